# cmake -DCXX=<compiler> -DMODULE=<cmake/BlipTorchOpenMP.cmake> -DWORK=<dir> -P this file
#
# blip_torch_bundled_libgomp against stand-in libtorch_cpu.so files whose NEEDED entries are those
# of a pip wheel (a renamed libgomp beside it), of Debian's libtorch (libgomp.so.1) and of a build
# without OpenMP. The stand-ins are built here with the compiler; only their dynamic sections matter.
include("${MODULE}")
file(REMOVE_RECURSE "${WORK}")
file(MAKE_DIRECTORY "${WORK}")
file(WRITE "${WORK}/gomp.cpp" "extern \"C\" int omp_get_max_threads() { return 1; }\n")
file(WRITE "${WORK}/torch.cpp" "extern \"C\" int omp_get_max_threads();\nint torch_threads() { return omp_get_max_threads(); }\n")
file(WRITE "${WORK}/plain.cpp" "int torch_threads() { return 1; }\n")

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${out}${err}")
  endif()
endfunction()

# A libtorch_cpu.so in WORK/<case> that needs the stand-in OpenMP runtime named <soname>.
function(torch_needing case soname)
  file(MAKE_DIRECTORY "${WORK}/${case}")
  run("${CXX}" -shared -fPIC "-Wl,-soname,${soname}" -o "${WORK}/${case}/${soname}" "${WORK}/gomp.cpp")
  run("${CXX}" -shared -fPIC -o "${WORK}/${case}/libtorch_cpu.so" "${WORK}/torch.cpp" "${WORK}/${case}/${soname}")
endfunction()

function(expect case want)
  blip_torch_bundled_libgomp("${WORK}/${case}/libtorch_cpu.so" got)
  if(NOT got STREQUAL want)
    message(FATAL_ERROR "${case}: expected [${want}], got [${got}]")
  endif()
  message(STATUS "${case}: [${got}]")
endfunction()

torch_needing(pip libgomp-0123abcd.so.1)
expect(pip "${WORK}/pip/libgomp-0123abcd.so.1")

torch_needing(system libgomp.so.1)
expect(system "")

file(MAKE_DIRECTORY "${WORK}/plain")
run("${CXX}" -shared -fPIC -o "${WORK}/plain/libtorch_cpu.so" "${WORK}/plain.cpp")
expect(plain "")

# A wheel missing its copy: nothing to link to (a warning), rather than a path that does not exist.
torch_needing(missing libgomp-4567cdef.so.1)
file(REMOVE "${WORK}/missing/libgomp-4567cdef.so.1")
expect(missing "")

expect(absent "")
