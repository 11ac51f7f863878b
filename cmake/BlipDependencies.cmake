# Every dependency comes from a Debian package (scripts/install_deps.sh installs them).
find_package(Torch REQUIRED)
find_package(Threads REQUIRED)
find_package(PkgConfig REQUIRED)
find_package(yaml-cpp REQUIRED)
find_package(nlohmann_json 3.9 REQUIRED)
find_package(ZLIB REQUIRED)  # crc32 of checkpoint records
find_package(ICU REQUIRED COMPONENTS uc)
# ATen's at::parallel_for is a header template: it runs on torch's OpenMP threads only in code
# compiled with -fopenmp, and on the calling thread alone otherwise (the fused attention and the
# checkpoint CRC use it). libtorch runs on GCC's libgomp, so only GCC's -fopenmp is used: clang's
# would bring a second OpenMP runtime (libomp) into the process.
set(BLIP_WITH_OPENMP OFF)
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  find_package(OpenMP COMPONENTS CXX)
  set(BLIP_WITH_OPENMP ${OpenMP_CXX_FOUND})
endif()
if(NOT BLIP_WITH_OPENMP)
  message(WARNING "no GCC OpenMP: libblip's own parallel loops will run on one thread")
endif()

if(BLIP_WITH_OPENCV)
  find_package(OpenCV REQUIRED COMPONENTS core imgcodecs imgproc)
endif()
if(BLIP_WITH_SENTENCEPIECE)
  pkg_check_modules(SENTENCEPIECE REQUIRED IMPORTED_TARGET sentencepiece)
endif()

# Torch's exported flags (e.g. -D_GLIBCXX_USE_CXX11_ABI) must reach every translation unit.
separate_arguments(BLIP_TORCH_CXX_FLAGS UNIX_COMMAND "${TORCH_CXX_FLAGS}")

# c10d's Gloo process group is compiled into Debian's libtorch; its headers include gloo's.
if(BLIP_WITH_DISTRIBUTED)
  find_path(GLOO_INCLUDE_DIR gloo/config.h)
  if(NOT GLOO_INCLUDE_DIR)
    message(WARNING "gloo headers not found (apt install libgloo-dev): building without c10d")
    set(BLIP_WITH_DISTRIBUTED OFF)
  endif()
endif()

# Approximate image search for large collections (src/retrieval/faiss_index.cpp). Optional: without
# FAISS the library still builds, faiss_available() says false and exact search covers everything.
option(BLIP_WITH_FAISS "Approximate nearest-neighbour search through FAISS (libfaiss-dev)" ON)
if(BLIP_WITH_FAISS)
  find_package(faiss CONFIG QUIET)
  # Debian's static libfaiss.a declares no link dependencies of its own: it needs OpenMP (GOMP_*,
  # omp_*) and the Fortran BLAS/LAPACK symbols (sgemm_, ssyrk_, sgesvd_, sgeqrf_). FindLAPACK
  # finds BLAS too; at run time libblas.so.3 is the same OpenBLAS that torch uses.
  if(faiss_FOUND)
    find_package(OpenMP QUIET COMPONENTS CXX)
    find_package(LAPACK QUIET)
  endif()
  if(NOT faiss_FOUND OR NOT OpenMP_CXX_FOUND OR NOT LAPACK_FOUND)
    message(STATUS "FAISS, OpenMP or BLAS/LAPACK not found (apt install libfaiss-dev): building without FAISS")
    set(BLIP_WITH_FAISS OFF)
  else()
    message(STATUS "FAISS ${faiss_VERSION}: approximate image search enabled")
  endif()
endif()

# One libgomp in the process: where torch brings its own (a pip wheel), our -fopenmp objects (and
# FAISS's) link that copy instead of the system's (BlipTorchOpenMP.cmake says why).
# After every find_package(OpenMP) above: each one resets the imported target's link libraries.
include(BlipTorchOpenMP)
set(BLIP_TORCH_LIBGOMP "")
if(TARGET OpenMP::OpenMP_CXX)
  blip_torch_cpu_library(_blip_torch_cpu)
  blip_torch_bundled_libgomp("${_blip_torch_cpu}" BLIP_TORCH_LIBGOMP)
  if(BLIP_TORCH_LIBGOMP)
    message(STATUS "OpenMP: linking torch's own runtime ${BLIP_TORCH_LIBGOMP}")
    set_property(TARGET OpenMP::OpenMP_CXX PROPERTY INTERFACE_LINK_LIBRARIES "${BLIP_TORCH_LIBGOMP};Threads::Threads")
  endif()
endif()
