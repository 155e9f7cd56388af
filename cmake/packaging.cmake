# Installing the server as a service and the Debian package (docs/OPERATIONS.md, "Installing as
# a service"). Included from CMakeLists.txt when the server is built.
#
# `cmake --install <build> [--prefix P]` (and `make install PREFIX=P`) installs, besides the
# client library (CMakeLists.txt):
#   P/bin/ordo                          stripped here, so a plain `cmake --install` ships no
#                                       debug info (the build keeps it for debugging)
#   P/lib/systemd/system/ordo.service   from packaging/ordo.service.in; systemd reads
#                                       /usr/lib/systemd/system and /usr/local/lib/systemd/system
#   P/etc/ordo/ordo.toml, or /etc/ordo/ordo.toml when P is /usr (the Debian package); an
#                                       existing file is kept, never overwritten
#   P/share/doc/ordo/                   README.md and OPERATIONS.md
# The paths in the unit and the place of the config file follow the prefix given at install
# time, not the one at configure time, so `cmake --install --prefix` gets a consistent tree.
# All of it is the `server` component; the Debian package (`make package`, CPack) holds only
# that component, under /usr.

install(TARGETS ordo RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT server)
install(FILES ${CMAKE_SOURCE_DIR}/README.md ${CMAKE_SOURCE_DIR}/docs/OPERATIONS.md
        DESTINATION ${CMAKE_INSTALL_DOCDIR} COMPONENT server)

set(ORDO_STRIP "${CMAKE_STRIP}")
if(NOT ORDO_STRIP)
  set(ORDO_STRIP strip)
endif()
set(ORDO_UNIT_TEMPLATE ${CMAKE_SOURCE_DIR}/packaging/ordo.service.in)
set(ORDO_CONFIG_TEMPLATE ${CMAKE_SOURCE_DIR}/packaging/ordo.toml)
# Runs at install time: CMAKE_INSTALL_PREFIX is then the prefix of this install (CPack's is /usr
# under a staging DESTDIR). Variables escaped with \ are the install-time ones.
install(CODE "
  string(REGEX REPLACE \"(.)/+$\" \"\\\\1\" ordo_prefix \"\${CMAKE_INSTALL_PREFIX}\")
  set(ordo_root \"\$ENV{DESTDIR}\")

  set(ordo_binary \"\${ordo_root}\${ordo_prefix}/${CMAKE_INSTALL_BINDIR}/ordo\")
  message(STATUS \"Stripping: \${ordo_binary}\")
  execute_process(COMMAND \"${ORDO_STRIP}\" \"\${ordo_binary}\" RESULT_VARIABLE ordo_rc)
  if(NOT ordo_rc EQUAL 0)
    message(FATAL_ERROR \"could not strip \${ordo_binary}\")
  endif()

  if(ordo_prefix STREQUAL \"/usr\")
    set(ordo_etc \"/etc/ordo\")
  else()
    set(ordo_etc \"\${ordo_prefix}/etc/ordo\")
  endif()
  set(ordo_config \"\${ordo_root}\${ordo_etc}/ordo.toml\")
  if(EXISTS \"\${ordo_config}\")
    message(STATUS \"Keeping: \${ordo_config} (the shipped default is packaging/ordo.toml)\")
  else()
    # file(INSTALL) puts DESTDIR in front of the destination itself.
    message(STATUS \"Installing: \${ordo_config}\")
    file(INSTALL \"${ORDO_CONFIG_TEMPLATE}\" DESTINATION \"\${ordo_etc}\"
         FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ MESSAGE_NEVER)
    list(APPEND CMAKE_INSTALL_MANIFEST_FILES \"\${ordo_config}\")
  endif()

  set(ORDO_UNIT_BINARY \"\${ordo_prefix}/${CMAKE_INSTALL_BINDIR}/ordo\")
  set(ORDO_UNIT_CONFIG \"\${ordo_etc}/ordo.toml\")
  set(ORDO_UNIT_DOCS \"\${ordo_prefix}/${CMAKE_INSTALL_DOCDIR}\")
  set(ordo_unit \"\${ordo_root}\${ordo_prefix}/lib/systemd/system/ordo.service\")
  message(STATUS \"Installing: \${ordo_unit}\")
  configure_file(\"${ORDO_UNIT_TEMPLATE}\" \"\${ordo_unit}\" @ONLY)
  list(APPEND CMAKE_INSTALL_MANIFEST_FILES \"\${ordo_unit}\")
" COMPONENT server)

# The Debian package: `make package` (cpack in build/release) writes
# build/release/ordo_<version>_<arch>.deb.
set(ORDO_PACKAGE_MAINTAINER "ordo maintainers <maintainers@ordo.invalid>" CACHE STRING
    "Maintainer field of the Debian package")
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME ordo)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "${ORDO_PACKAGE_MAINTAINER}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "durable, ordered event streams for AI-agent sessions")
set(CPACK_PACKAGE_DIRECTORY ${CMAKE_BINARY_DIR})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
# Install into the staging directory as DESTDIR with the prefix /usr, so the install code above
# sees the prefix the package installs to (and puts the config file into /etc).
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX /usr)
# Only the server component: the client library is for building programs, not for a service.
set(CPACK_INSTALL_CMAKE_PROJECTS "${CMAKE_BINARY_DIR};ordo;server;/")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${ORDO_PACKAGE_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_SECTION net)
# The extended description; CPack puts the summary above it as the first line.
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
    "ordo keeps the event streams of AI-agent sessions durable in SQLite and serves them over
HTTP (the Durable Streams protocol) with live reads by long-poll and Server-Sent Events.
Runs as the systemd service ordo.service, configured in /etc/ordo/ordo.toml.")
# Dependencies from the libraries the binary links (dpkg-shlibdeps).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${CMAKE_SOURCE_DIR}/packaging/debian/conffiles ${CMAKE_SOURCE_DIR}/packaging/debian/postinst
    ${CMAKE_SOURCE_DIR}/packaging/debian/prerm ${CMAKE_SOURCE_DIR}/packaging/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
