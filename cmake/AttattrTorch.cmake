# Which LibTorch the engine (and the tests and benchmarks that call torch directly) build against,
# as one INTERFACE target, attattr::torch: link it instead of ${TORCH_LIBRARIES}.
#
#   ATTATTR_LIBTORCH=wheel (default)  The official LibTorch 2.x inside the PyPI `torch` wheel,
#                                     pinned in scripts/libtorch-wheel.txt and installed by
#                                     scripts/setup.sh into $ATTATTR_LIBTORCH_VENV (default
#                                     ~/.cache/attattr/libtorch-venv); ATTATTR_TORCH_WHEEL_DIR names
#                                     another .../site-packages/torch. Its headers need C++20:
#                                     attattr::torch requires cxx_std_20 of whatever links it (the
#                                     engine, not its users: the engine's public headers are
#                                     torch-free, and the rest of the project stays C++17).
#   ATTATTR_LIBTORCH=system           find_package(Torch): Debian's libtorch-dev 1.13, or another
#                                     LibTorch named by CMAKE_PREFIX_PATH (the Dockerfile's CUDA
#                                     variant). Preset `libtorch-system`; CI builds and tests it
#                                     (tests/libtorch_system).
#
# The default follows the figures (bench/README.md "LibTorch 1.13 against 2.15"): built against
# 2.15 the same engine explains 1.24–1.52× faster end to end than against 1.13, fp32 and bf16.
#
# Why not the wheel's own TorchConfig.cmake: the PyPI wheel is a CUDA build, and its config insists
# on finding a CUDA toolkit (nvcc, headers) even for a CPU-only consumer. The CPU engine needs only
# libtorch_cpu and libc10; libtorch_cpu lists libcudart and libcupti as needed libraries, which the
# nvidia-cuda-runtime and nvidia-cuda-cupti wheels (installed beside torch, without the rest of
# CUDA) provide. At run time libtorch_cpu finds them through its own RPATH
# ($ORIGIN/../../nvidia/...); at link time the linker finds them through the -rpath given here.
set(ATTATTR_LIBTORCH "wheel" CACHE STRING
    "LibTorch to build the engine against: wheel (the PyPI torch wheel, 2.x) or system (find_package(Torch), e.g. Debian's 1.13)")
set_property(CACHE ATTATTR_LIBTORCH PROPERTY STRINGS wheel system)

add_library(attattr_torch INTERFACE)
add_library(attattr::torch ALIAS attattr_torch)

if(ATTATTR_LIBTORCH STREQUAL "system")
  find_package(Torch REQUIRED)
  message(STATUS "LibTorch: find_package(Torch) ${Torch_VERSION} (${Torch_DIR})")
  target_link_libraries(attattr_torch INTERFACE ${TORCH_LIBRARIES})
  target_compile_options(attattr_torch INTERFACE ${TORCH_CXX_FLAGS})
  # A LibTorch 2.x found this way (an official zip, or the GPU scripts' stand-in config) needs
  # C++20 as the wheel does; its umbrella header says so.
  foreach(dir ${TORCH_INCLUDE_DIRS})
    foreach(header "${dir}/torch/all.h" "${dir}/torch/csrc/api/include/torch/all.h")
      if(EXISTS "${header}")
        file(STRINGS "${header}" attattr_cxx20 REGEX "C\\+\\+20 or later")
        if(attattr_cxx20)
          target_compile_features(attattr_torch INTERFACE cxx_std_20)
        endif()
      endif()
    endforeach()
  endforeach()
elseif(ATTATTR_LIBTORCH STREQUAL "wheel")
  set(attattr_libtorch_venv "$ENV{HOME}/.cache/attattr/libtorch-venv")
  if(DEFINED ENV{ATTATTR_LIBTORCH_VENV})
    set(attattr_libtorch_venv "$ENV{ATTATTR_LIBTORCH_VENV}")
  endif()
  file(GLOB attattr_wheel_guess "${attattr_libtorch_venv}/lib/python3*/site-packages/torch")
  set(ATTATTR_TORCH_WHEEL_DIR "${attattr_wheel_guess}" CACHE PATH
      "The PyPI torch wheel's package directory (.../site-packages/torch) for ATTATTR_LIBTORCH=wheel")
  set(attattr_tw "${ATTATTR_TORCH_WHEEL_DIR}")
  if(NOT EXISTS "${attattr_tw}/lib/libtorch_cpu.so" OR NOT EXISTS "${attattr_tw}/include/torch")
    message(FATAL_ERROR "ATTATTR_LIBTORCH=wheel: no torch wheel at '${attattr_tw}' (lib/libtorch_cpu.so "
                        "and include/torch). Run scripts/setup.sh (it installs the wheel of "
                        "scripts/libtorch-wheel.txt into ${attattr_libtorch_venv}), set "
                        "ATTATTR_TORCH_WHEEL_DIR to a site-packages/torch directory, or build "
                        "against Debian's libtorch-dev with -DATTATTR_LIBTORCH=system.")
  endif()
  # The directories of the CUDA runtime and CUPTI libraries libtorch_cpu names (for the linker).
  file(GLOB attattr_cuda_runtime "${attattr_tw}/../nvidia/*/lib/libcudart.so*"
       "${attattr_tw}/../nvidia/*/lib/libcupti.so*")
  set(attattr_nvidia_libs "")
  foreach(lib ${attattr_cuda_runtime})
    get_filename_component(dir "${lib}" DIRECTORY)
    list(APPEND attattr_nvidia_libs "${dir}")
  endforeach()
  list(REMOVE_DUPLICATES attattr_nvidia_libs)
  file(STRINGS "${attattr_tw}/version.py" attattr_tv REGEX "^__version__")
  message(STATUS "LibTorch: the PyPI wheel at ${attattr_tw} (${attattr_tv})")
  target_include_directories(attattr_torch SYSTEM INTERFACE
    "${attattr_tw}/include" "${attattr_tw}/include/torch/csrc/api/include")
  target_link_libraries(attattr_torch INTERFACE
    "${attattr_tw}/lib/libtorch_cpu.so" "${attattr_tw}/lib/libc10.so")
  # The wheels are built with the C++11 ABI (as Debian's libraries are).
  target_compile_definitions(attattr_torch INTERFACE _GLIBCXX_USE_CXX11_ABI=1)
  target_compile_features(attattr_torch INTERFACE cxx_std_20)
  foreach(dir "${attattr_tw}/lib" ${attattr_nvidia_libs})
    target_link_options(attattr_torch INTERFACE "LINKER:-rpath,${dir}")
  endforeach()
else()
  message(FATAL_ERROR "ATTATTR_LIBTORCH must be wheel or system, not '${ATTATTR_LIBTORCH}'")
endif()
