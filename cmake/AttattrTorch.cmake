# Which LibTorch the engine (and the tests and benchmarks that call torch directly) build against,
# as one INTERFACE target, attattr::torch: link it instead of ${TORCH_LIBRARIES}.
#
#   ATTATTR_LIBTORCH=debian (default)  Debian's libtorch-dev 1.13 through its TorchConfig.cmake.
#   ATTATTR_LIBTORCH=wheel             The official LibTorch 2.x inside the PyPI `torch` wheel
#                                      (ATTATTR_TORCH_WHEEL_DIR, default: the oracle virtual
#                                      environment's site-packages/torch, which scripts/setup.sh
#                                      installs). Its headers need C++20: attattr::torch requires
#                                      cxx_std_20 of whatever links it (the engine, not its users:
#                                      the engine's public headers are torch-free).
#
# Why not the wheel's own TorchConfig.cmake: the PyPI wheel is a CUDA build, and its config insists
# on finding a CUDA toolkit (nvcc, headers) even for a CPU-only consumer. The CPU engine needs only
# libtorch_cpu and libc10; libtorch_cpu lists libcudart and libcupti as needed libraries, which the
# nvidia-cuda-runtime and nvidia-cuda-cupti wheels (installed beside torch) provide. At run time
# libtorch_cpu finds them through its own RPATH ($ORIGIN/../../nvidia/...); at link time the linker
# finds them through the -rpath given here. bench/README.md "LibTorch 1.13 against 2.x" has the
# figures behind the default.
set(ATTATTR_LIBTORCH "debian" CACHE STRING
    "LibTorch to build the engine against: debian (libtorch-dev 1.13) or wheel (the PyPI torch wheel, 2.x)")
set_property(CACHE ATTATTR_LIBTORCH PROPERTY STRINGS debian wheel)

add_library(attattr_torch INTERFACE)
add_library(attattr::torch ALIAS attattr_torch)

if(ATTATTR_LIBTORCH STREQUAL "debian")
  find_package(Torch REQUIRED)
  target_link_libraries(attattr_torch INTERFACE ${TORCH_LIBRARIES})
  target_compile_options(attattr_torch INTERFACE ${TORCH_CXX_FLAGS})
elseif(ATTATTR_LIBTORCH STREQUAL "wheel")
  set(attattr_venv "$ENV{HOME}/.cache/attattr/oracle-venv")
  if(DEFINED ENV{ATTATTR_ORACLE_VENV})
    set(attattr_venv "$ENV{ATTATTR_ORACLE_VENV}")
  endif()
  file(GLOB attattr_wheel_guess "${attattr_venv}/lib/python3*/site-packages/torch")
  set(ATTATTR_TORCH_WHEEL_DIR "${attattr_wheel_guess}" CACHE PATH
      "The PyPI torch wheel's package directory (.../site-packages/torch) for ATTATTR_LIBTORCH=wheel")
  set(attattr_tw "${ATTATTR_TORCH_WHEEL_DIR}")
  if(NOT EXISTS "${attattr_tw}/lib/libtorch_cpu.so" OR NOT EXISTS "${attattr_tw}/include/torch")
    message(FATAL_ERROR "ATTATTR_LIBTORCH=wheel: no torch wheel at '${attattr_tw}' (lib/libtorch_cpu.so "
                        "and include/torch). Run scripts/setup.sh (it installs one in the oracle "
                        "venv) or set ATTATTR_TORCH_WHEEL_DIR to a site-packages/torch directory.")
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
  message(FATAL_ERROR "ATTATTR_LIBTORCH must be debian or wheel, not '${ATTATTR_LIBTORCH}'")
endif()
