# Run at every build (core/CMakeLists.txt, target fovea_git_revision): writes OUT with the source tree's
# `git describe`, touching it only when the revision changed, so `fovea info` and every bench/run record
# name the code that was built, not the code that was configured.
execute_process(COMMAND git describe --always --dirty --abbrev=12 WORKING_DIRECTORY ${SOURCE_DIR}
                OUTPUT_VARIABLE rev OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
if(NOT rev)
  set(rev unknown)
endif()
set(text "// Generated at build time by cmake/FoveaGitRevision.cmake.\n#pragma once\n#define FOVEA_GIT_REVISION \"${rev}\"\n")
set(old "")
if(EXISTS ${OUT})
  file(READ ${OUT} old)
endif()
if(NOT old STREQUAL text)
  file(WRITE ${OUT} "${text}")
endif()
