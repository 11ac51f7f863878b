# Which OpenMP runtime libtorch runs on, so that libblip's -fopenmp objects call into the same one.
#
# Debian's libtorch links the system's libgomp.so.1, as GCC's -fopenmp does. A pip-installed torch
# (the CUDA benchmark build) ships its own copy under a hashed name next to libtorch_cpu.so
# (auditwheel renames it, e.g. libgomp-a34b3233.so.1). Linking our objects with the system's
# libgomp there loads both: the system's, a direct dependency of the program, comes first in the
# symbol lookup order and so serves torch's OpenMP calls as well as ours (checked with a renamed
# copy of libgomp: one thread count, set through either), but it is not the runtime torch was
# built and tested with, and any symbol version it lacks would still bind to torch's copy, mixing
# two runtimes' state. Linking torch's copy leaves one libgomp in the process.
#
# blip_torch_bundled_libgomp(<libtorch_cpu.so> <out>) sets <out> to the path of the libgomp copy that
# the library needs when it is not the system's libgomp.so.1, and to "" otherwise (including when
# the dynamic section cannot be read). It works in project and script mode (tests/cmake/).
function(blip_torch_bundled_libgomp torch_cpu out)
  set(${out} "" PARENT_SCOPE)
  if(NOT torch_cpu OR NOT EXISTS "${torch_cpu}")
    return()
  endif()
  if(CMAKE_READELF)
    set(BLIP_READELF "${CMAKE_READELF}")
  else()
    find_program(BLIP_READELF NAMES readelf)  # script mode: no toolchain variables
  endif()
  if(NOT BLIP_READELF)
    return()
  endif()
  execute_process(COMMAND "${BLIP_READELF}" -d "${torch_cpu}" OUTPUT_VARIABLE _dynamic RESULT_VARIABLE _rc
                  ERROR_QUIET)
  if(NOT _rc EQUAL 0)
    return()
  endif()
  string(REGEX MATCH "\\(NEEDED\\)[^\n]*\\[(libgomp[^]\n]*)\\]" _needed "${_dynamic}")
  set(_name "${CMAKE_MATCH_1}")
  if(NOT _name OR _name STREQUAL "libgomp.so.1")
    return()  # no OpenMP, or the system's runtime: FindOpenMP's libgomp is the same library
  endif()
  get_filename_component(_dir "${torch_cpu}" DIRECTORY)
  if(NOT EXISTS "${_dir}/${_name}")
    message(WARNING "${torch_cpu} needs ${_name}, which is not beside it: libblip links the "
                    "system's libgomp, which then serves torch's OpenMP calls too")
    return()
  endif()
  set(${out} "${_dir}/${_name}" PARENT_SCOPE)
endfunction()

# libtorch_cpu's path: Torch's imported target torch_cpu (Debian's and pip's Caffe2Targets), else
# the library under TORCH_INSTALL_PREFIX (TorchConfig sets it).
function(blip_torch_cpu_library out)
  set(${out} "" PARENT_SCOPE)
  if(TARGET torch_cpu)
    get_target_property(_location torch_cpu LOCATION)
    if(_location AND EXISTS "${_location}")
      set(${out} "${_location}" PARENT_SCOPE)
      return()
    endif()
  endif()
  set(_file "${TORCH_INSTALL_PREFIX}/lib/${CMAKE_SHARED_LIBRARY_PREFIX}torch_cpu${CMAKE_SHARED_LIBRARY_SUFFIX}")
  if(TORCH_INSTALL_PREFIX AND EXISTS "${_file}")
    set(${out} "${_file}" PARENT_SCOPE)
  endif()
endfunction()
