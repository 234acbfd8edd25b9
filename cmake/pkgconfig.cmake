# rill.pc for pkg-config, from cmake/rill.pc.in. It is written at install time, not configure
# time, so that the prefix in it is the one installed to (`cmake --install build --prefix DIR`,
# `make install PREFIX=DIR`), then installed into <libdir>/pkgconfig.
#   Requires.private: what librill.a needs besides itself (OpenSSL 3, zlib, c-ares); librill.so records
#   them itself. Libs.private: the thread library (-pthread; part of libc on current glibc).
foreach(dir LIBDIR INCLUDEDIR)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_${dir}}")
    set(rill_pc_${dir} "${CMAKE_INSTALL_${dir}}")
  else()
    set(rill_pc_${dir} "\${prefix}/${CMAKE_INSTALL_${dir}}")
  endif()
endforeach()
if(CMAKE_USE_PTHREADS_INIT OR CMAKE_THREAD_LIBS_INIT STREQUAL "-pthread")
  set(rill_pc_threads "-pthread")
else()
  set(rill_pc_threads "${CMAKE_THREAD_LIBS_INIT}")
endif()
set(rill_pc_out "${CMAKE_BINARY_DIR}/pkgconfig/rill.pc")
# Bracket arguments keep the literal ${prefix} in the generated install script.
install(CODE "
  set(RILL_PC_PREFIX \"\${CMAKE_INSTALL_PREFIX}\")
  set(RILL_PC_LIBDIR [==[${rill_pc_LIBDIR}]==])
  set(RILL_PC_INCLUDEDIR [==[${rill_pc_INCLUDEDIR}]==])
  set(RILL_PC_LIBS_PRIVATE [==[${rill_pc_threads}]==])
  set(PROJECT_VERSION [==[${PROJECT_VERSION}]==])
  configure_file([==[${CMAKE_CURRENT_LIST_DIR}/rill.pc.in]==] [==[${rill_pc_out}]==] @ONLY)
")
install(FILES ${rill_pc_out} DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
