# cmake -DDIR=<object dir> -DOUT=<table.tsv> -P cmake/FoveaPtxasTable.cmake
#
# Collects what ptxas reported for every kernel of an nvcc-built kernel library (the OBJECT.ptxas files that
# cmake/ptxas_log.sh keeps) into one table, a line per kernel and architecture:
#   sm_80 <TAB> mangled name <TAB> registers <TAB> static shared bytes <TAB> stack bytes
# read by `fovea profile` (core/emu/cost_model.h) for occupancy.
file(GLOB_RECURSE logs "${DIR}/*.ptxas")
set(table "")
foreach(log ${logs})
  file(STRINGS "${log}" lines)
  set(name "")
  set(arch "")
  set(stack 0)
  foreach(line IN LISTS lines)
    if(line MATCHES "Compiling entry function '([^']+)' for '(sm_[0-9a-z]+)'")
      set(name "${CMAKE_MATCH_1}")
      set(arch "${CMAKE_MATCH_2}")
      set(stack 0)
    elseif(line MATCHES "([0-9]+) bytes stack frame")
      set(stack "${CMAKE_MATCH_1}")
    elseif(line MATCHES "Used ([0-9]+) registers" AND NOT name STREQUAL "")
      set(regs "${CMAKE_MATCH_1}")
      set(smem 0)
      if(line MATCHES "([0-9]+) bytes smem")
        set(smem "${CMAKE_MATCH_1}")
      endif()
      string(APPEND table "${arch}\t${name}\t${regs}\t${smem}\t${stack}\n")
      set(name "")
    endif()
  endforeach()
endforeach()
file(WRITE "${OUT}.tmp" "${table}")
file(RENAME "${OUT}.tmp" "${OUT}")
