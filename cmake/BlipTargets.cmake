# libblip is built from one OBJECT library per area (src/<area>/*.cpp), merged into the static
# library `blip`. Each area can be built and tested on its own (target blipobj_<area>; tools own the blip_<tool> names).
set(BLIP_WARNINGS -Wall -Wextra -Wno-unused-parameter)

function(blip_area name)
  cmake_parse_arguments(A "" "" "DEPS" ${ARGN})
  file(GLOB _srcs CONFIGURE_DEPENDS "${PROJECT_SOURCE_DIR}/src/${name}/*.cpp")
  if(NOT _srcs)
    return()
  endif()
  add_library(blipobj_${name} OBJECT ${_srcs})
  target_include_directories(blipobj_${name} PUBLIC
    $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
    $<INSTALL_INTERFACE:include>
    PRIVATE ${PROJECT_SOURCE_DIR}/src)
  target_compile_options(blipobj_${name} PRIVATE ${BLIP_WARNINGS} ${BLIP_TORCH_CXX_FLAGS})
  target_link_libraries(blipobj_${name} PUBLIC ${A_DEPS})
  if(BLIP_WITH_OPENMP)
    target_link_libraries(blipobj_${name} PUBLIC OpenMP::OpenMP_CXX)  # at::parallel_for (BlipDependencies)
  endif()
  set_property(GLOBAL APPEND PROPERTY BLIP_AREAS blipobj_${name})
endfunction()

blip_area(core DEPS ${CMAKE_DL_LIBS})  # dlsym: OpenBLAS is looked up at run time (blas_kernels.cpp)
blip_area(io DEPS blipobj_core torch nlohmann_json::nlohmann_json ZLIB::ZLIB)
blip_area(text DEPS blipobj_core ICU::uc)
set(_image_deps blipobj_core torch)
if(BLIP_WITH_OPENCV)
  list(APPEND _image_deps ${OpenCV_LIBS})
endif()
blip_area(image DEPS ${_image_deps})
blip_area(models DEPS blipobj_core blipobj_io torch yaml-cpp nlohmann_json::nlohmann_json)
# The fused attention kernels are compiled for their instruction sets; fused_attention.cpp calls
# one only where the CPU has it. Elsewhere they build empty. (GCC 12 warns falsely about the
# undefined vectors inside its AVX-512 intrinsics.)
if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64|amd64" AND CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
  set_source_files_properties("${PROJECT_SOURCE_DIR}/src/models/fused_attention_avx512.cpp"
                              PROPERTIES COMPILE_OPTIONS "-mavx512f;-mfma;-Wno-maybe-uninitialized")
  set_source_files_properties("${PROJECT_SOURCE_DIR}/src/models/fused_attention_avx2.cpp"
                              PROPERTIES COMPILE_OPTIONS "-mavx2;-mfma")
endif()
blip_area(retrieval DEPS blipobj_models blipobj_data blipobj_dist blipobj_image blipobj_text blipobj_io blipobj_core torch)
if(TARGET blipobj_retrieval AND BLIP_WITH_FAISS)
  # PRIVATE: no public header includes FAISS's, so dependents get only the link (LINK_ONLY), not
  # FAISS's include path or -fopenmp.
  target_link_libraries(blipobj_retrieval PRIVATE faiss OpenMP::OpenMP_CXX LAPACK::LAPACK)
  target_compile_definitions(blipobj_retrieval PRIVATE BLIP_WITH_FAISS=1)
endif()
blip_area(dist DEPS blipobj_core torch Threads::Threads)
blip_area(data DEPS blipobj_text blipobj_image blipobj_io blipobj_core torch nlohmann_json::nlohmann_json Threads::Threads)
blip_area(features DEPS blipobj_retrieval blipobj_models blipobj_text blipobj_image blipobj_io blipobj_core torch nlohmann_json::nlohmann_json)
blip_area(eval DEPS blipobj_retrieval blipobj_dist blipobj_data blipobj_models blipobj_text blipobj_image blipobj_io blipobj_core torch Threads::Threads)

blip_area(train DEPS blipobj_retrieval blipobj_eval blipobj_dist blipobj_data blipobj_models blipobj_text blipobj_image blipobj_io blipobj_core torch yaml-cpp nlohmann_json::nlohmann_json)

foreach(_t blipobj_text blipobj_image blipobj_dist blipobj_data blipobj_features blipobj_eval blipobj_train)
  if(TARGET ${_t})
    if(BLIP_WITH_OPENCV)
      target_compile_definitions(${_t} PUBLIC BLIP_WITH_OPENCV=1)
    endif()
    if(BLIP_WITH_SENTENCEPIECE)
      target_compile_definitions(${_t} PUBLIC BLIP_WITH_SENTENCEPIECE=1)
    endif()
    if(BLIP_WITH_DISTRIBUTED)
      target_compile_definitions(${_t} PUBLIC BLIP_WITH_DISTRIBUTED=1)
    endif()
  endif()
endforeach()

get_property(_areas GLOBAL PROPERTY BLIP_AREAS)
set(_objs)
foreach(_a ${_areas})
  list(APPEND _objs $<TARGET_OBJECTS:${_a}>)
endforeach()
add_library(blip STATIC ${_objs})
add_library(blip::blip ALIAS blip)
target_include_directories(blip PUBLIC
  $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
  $<INSTALL_INTERFACE:include>)
target_compile_features(blip PUBLIC cxx_std_17)
set(_pub torch Threads::Threads yaml-cpp nlohmann_json::nlohmann_json ICU::uc ZLIB::ZLIB)
if(BLIP_WITH_OPENCV)
  list(APPEND _pub ${OpenCV_LIBS})
  target_compile_definitions(blip PUBLIC BLIP_WITH_OPENCV=1)
endif()
if(BLIP_WITH_SENTENCEPIECE)
  target_compile_definitions(blip PUBLIC BLIP_WITH_SENTENCEPIECE=1)
endif()
if(BLIP_WITH_DISTRIBUTED)
  target_compile_definitions(blip PUBLIC BLIP_WITH_DISTRIBUTED=1)
endif()
target_link_libraries(blip PUBLIC ${_pub})
if(BLIP_WITH_OPENMP)
  target_link_libraries(blip PRIVATE OpenMP::OpenMP_CXX)  # libgomp for the objects' parallel loops
endif()
if(BLIP_WITH_FAISS AND TARGET blipobj_retrieval)
  # libblip.a holds faiss_index.o, so whatever links libblip links these too (blipConfig finds them).
  target_link_libraries(blip PRIVATE faiss OpenMP::OpenMP_CXX LAPACK::LAPACK)
endif()

# SentencePiece lives in a plugin loaded at run time into its own link-map namespace (see
# src/sentencepiece_plugin/plugin_abi.h): Debian's libsentencepiece and libtorch's libprotobuf
# cannot share one global symbol scope.
if(BLIP_WITH_SENTENCEPIECE)
  add_library(blip_sentencepiece MODULE ${PROJECT_SOURCE_DIR}/src/sentencepiece_plugin/plugin.cpp)
  target_compile_options(blip_sentencepiece PRIVATE ${BLIP_WARNINGS})
  target_link_libraries(blip_sentencepiece PRIVATE PkgConfig::SENTENCEPIECE)
  set_target_properties(blip_sentencepiece PROPERTIES
    PREFIX "lib" LIBRARY_OUTPUT_DIRECTORY "${PROJECT_BINARY_DIR}/lib"
    CXX_VISIBILITY_PRESET hidden)
  install(TARGETS blip_sentencepiece LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}/blip)
  add_dependencies(blip blip_sentencepiece)
endif()
if(TARGET blipobj_text)
  target_link_libraries(blipobj_text PUBLIC ${CMAKE_DL_LIBS})
  target_compile_definitions(blipobj_text PRIVATE
    BLIP_PLUGIN_BUILD_DIR="${PROJECT_BINARY_DIR}/lib"
    BLIP_PLUGIN_INSTALL_DIR="${CMAKE_INSTALL_FULL_LIBDIR}/blip")
  if(TARGET blip_sentencepiece)
    add_dependencies(blipobj_text blip_sentencepiece)
  endif()
endif()
target_link_libraries(blip PUBLIC ${CMAKE_DL_LIBS})

# c10d's ProcessGroupGloo headers include gloo's own (libgloo-dev).
if(TARGET blipobj_dist AND GLOO_INCLUDE_DIR)
  target_include_directories(blipobj_dist PRIVATE ${GLOO_INCLUDE_DIR})
endif()
