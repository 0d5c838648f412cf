# cmake/inih.cmake - how long a configuration line may be. inih reads a line into a
# buffer of fixed size. Upstream fixes it when libinih is compiled (200 bytes
# by default); Debian's libinih makes it a run-time setting (ini_max_line and
# friends), which host/config.c raises so that values of 4096 characters and
# more fit. ward_inih_limits(TARGET) tells TARGET's sources which one it has.
include(CheckSymbolExists)
set(CMAKE_REQUIRED_INCLUDES ${INIH_INCLUDE_DIRS})
set(CMAKE_REQUIRED_LIBRARIES ${INIH_LINK_LIBRARIES})
check_symbol_exists(ini_max_line ini.h WARD_INIH_RUNTIME_LIMITS)
unset(CMAKE_REQUIRED_INCLUDES)
unset(CMAKE_REQUIRED_LIBRARIES)
if(NOT WARD_INIH_RUNTIME_LIMITS)
  message(WARNING "this libinih fixes its line length when it is built (200 bytes unless changed): "
    "configuration lines longer than that are refused (with Debian's libinih-dev, ward raises it to 16384 characters)")
endif()

function(ward_inih_limits target)
  if(WARD_INIH_RUNTIME_LIMITS)
    target_compile_definitions(${target} PRIVATE WARD_INIH_RUNTIME_LIMITS)
  endif()
endfunction()
