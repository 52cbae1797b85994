# Compiles through ccache when it is installed (scripts/packages.txt lists it), so a build that
# repeats one already made on this machine — a fresh clone in CI, the sanitizer and other-LibTorch
# build trees the tests configure, the image's build stage (Dockerfile: a cache mount) — takes
# minutes instead of the ~20 a cold Release build takes on 2 cores. Off with -DATTATTR_CCACHE=OFF.
#
# The settings travel with each compile (not in ~/.config/ccache, which stays the user's):
#   CCACHE_BASEDIR=<source dir>  paths inside the checkout are hashed relative to the build
#                                directory, so two clones at different paths share their entries
#   CCACHE_NOHASHDIR=1           the sanitizer builds' debug info (-g1) names the directory of the
#                                build that filled the entry; accepted to share entries across clones
#   CCACHE_SLOPPINESS            what ccache needs to cache compiles that use the engine's
#                                precompiled header (pch_defines, time_macros)
# ccache keeps its own size bound (5 GiB by default; `ccache -s` shows use and hit rate).
option(ATTATTR_CCACHE "Compile through ccache when it is installed" ON)
if(ATTATTR_CCACHE AND NOT CMAKE_CXX_COMPILER_LAUNCHER)
  find_program(ATTATTR_CCACHE_PROGRAM ccache)
  if(ATTATTR_CCACHE_PROGRAM)
    set(CMAKE_CXX_COMPILER_LAUNCHER
        ${CMAKE_COMMAND} -E env
        CCACHE_BASEDIR=${PROJECT_SOURCE_DIR}
        CCACHE_NOHASHDIR=1
        CCACHE_SLOPPINESS=pch_defines,time_macros
        ${ATTATTR_CCACHE_PROGRAM})
    message(STATUS "Compiling through ${ATTATTR_CCACHE_PROGRAM}")
  endif()
endif()
