# `cmake --install` produces a CMake package: find_package(blip) then link blip::blip.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)
install(TARGETS blip EXPORT blipTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY include/blip DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY configs/ DESTINATION ${CMAKE_INSTALL_DATADIR}/blip/configs)
install(EXPORT blipTargets NAMESPACE blip:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/blip)
# Where BlipTargets installs the SentencePiece plugin (blipConfig exports its path).
set(BLIP_INSTALL_PLUGINDIR ${CMAKE_INSTALL_LIBDIR}/blip)
configure_package_config_file(cmake/blipConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/blipConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/blip
  PATH_VARS BLIP_INSTALL_PLUGINDIR)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/blipConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/blipConfig.cmake
  ${CMAKE_CURRENT_BINARY_DIR}/blipConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/blip)
