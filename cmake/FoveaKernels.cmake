# One kernel source, two devices, one binary.
#
# fovea_add_kernels(NAME SOURCES a.cu b.cu ... [LINK libs...] [EMU_CUDA_ARCH 800] [NAMESPACE ns] [EMU_ONLY])
# makes
#   NAME_emu         : every .cu compiled as C++ by the host compiler for the emulator (device 'emu'), from a copy
#                      written at build time by cmake/FoveaEmuSource.cmake (LANGUAGE is per directory, so the .cu
#                      itself cannot be both CUDA and CXX; the copy also rewrites `extern __shared__` arrays);
#                      namespace fovea::emu_kernels.
#   NAME_emu_checked : the same copies compiled again with a hook before every load and store
#                      (-fsanitize=kernel-address, whose hooks core/emu/check.cpp defines) for the emulator's
#                      memcheck, initcheck, racecheck and memory metrics; namespace fovea::emu_kernels_checked.
#                      Linked into every program that links NAME_emu; it runs only when a check mode or profiling
#                      is on, so the normal build keeps its speed. Not made in FOVEA_SANITIZE builds, nor with
#                      -DFOVEA_EMU_CHECKED=OFF.
#   NAME_cuda        : the same .cu files compiled by nvcc (device 'cuda'), when the toolkit is found;
#                      namespace fovea::cuda_kernels.
#   NAME             : an INTERFACE target linking them.
# EMU_CUDA_ARCH (default: the cache variable FOVEA_EMU_CUDA_ARCH, empty) defines __CUDA_ARCH__ for the emulator
# builds, so that arch-dependent code paths run on the emulator; NAMESPACE replaces emu_kernels (for a second
# emulator build of the same files, e.g. at another architecture; with EMU_ONLY, which skips NAME_cuda).
set(FOVEA_EMU_CUDA_ARCH "" CACHE STRING "__CUDA_ARCH__ for the emulator builds of kernels (empty: undefined)")

# g++ flags of the checked build: every access a call, none merged or split away (a float4 stays one 16-byte
# access, as nvcc's LDG.128), line tables for the reports.
set(FOVEA_EMU_CHECKED_FLAGS
    -fsanitize=kernel-address --param=asan-instrumentation-with-call-threshold=0 --param=asan-stack=0
    --param=asan-globals=0 -fno-tree-sra -fno-tree-vectorize -fno-tree-slp-vectorize -fno-store-merging -g1 -gdwarf-4)

function(fovea_add_kernels name)
  cmake_parse_arguments(K "EMU_ONLY" "EMU_CUDA_ARCH;NAMESPACE" "SOURCES;LINK" ${ARGN})
  if(NOT DEFINED K_EMU_CUDA_ARCH)
    set(K_EMU_CUDA_ARCH "${FOVEA_EMU_CUDA_ARCH}")
  endif()
  if(NOT K_NAMESPACE)
    set(K_NAMESPACE emu_kernels)
  endif()
  set(with_checked ON)
  if(FOVEA_SANITIZE OR NOT FOVEA_EMU_CHECKED)  # -fsanitize=address and kernel-address exclude each other
    set(with_checked OFF)
  endif()
  set(rewrite ${PROJECT_SOURCE_DIR}/cmake/FoveaEmuSource.cmake)
  set(normal)
  set(checked)
  foreach(src ${K_SOURCES})
    get_filename_component(abs ${src} ABSOLUTE)
    get_filename_component(dir ${abs} DIRECTORY)
    file(RELATIVE_PATH rel ${PROJECT_SOURCE_DIR} ${abs})
    string(MAKE_C_IDENTIFIER "${name}_${rel}" id)
    set(anchor "")
    if(with_checked)
      set(anchor fovea_emu_checked_${id})
    endif()
    foreach(variant normal checked)
      if(variant STREQUAL "checked" AND NOT with_checked)
        continue()
      endif()
      set(out ${CMAKE_CURRENT_BINARY_DIR}/emu_sources/${variant}/${id}.cpp)
      set(is_checked 0)
      if(variant STREQUAL "checked")
        set(is_checked 1)
      endif()
      add_custom_command(OUTPUT ${out}
                         COMMAND ${CMAKE_COMMAND} -DIN=${abs} -DOUT=${out} -DANCHOR=${anchor} -DCHECKED=${is_checked}
                                 -P ${rewrite}
                         DEPENDS ${abs} ${rewrite}
                         COMMENT "emulator source of ${rel} (${variant})" VERBATIM)
      set_source_files_properties(${out} PROPERTIES COMPILE_OPTIONS "-iquote;${dir}")
      list(APPEND ${variant} ${out})
    endforeach()
  endforeach()

  set(emu_defs FOVEA_EMU_BUILD=1)
  if(NOT K_EMU_CUDA_ARCH STREQUAL "")
    list(APPEND emu_defs __CUDA_ARCH__=${K_EMU_CUDA_ARCH})
  endif()
  add_library(${name}_emu STATIC ${normal})
  target_compile_definitions(${name}_emu PRIVATE FOVEA_KERNEL_NS=${K_NAMESPACE} ${emu_defs})
  target_compile_options(${name}_emu PRIVATE ${FOVEA_WARNINGS} -Wno-sign-compare -Wno-unused-parameter)
  target_link_libraries(${name}_emu PUBLIC fovea_core fovea_emu ${K_LINK})
  if(with_checked)
    add_library(${name}_emu_checked STATIC ${checked})
    target_compile_definitions(${name}_emu_checked PRIVATE FOVEA_KERNEL_NS=${K_NAMESPACE}_checked
                                                           FOVEA_EMU_CHECKED=1 ${emu_defs})
    target_compile_options(${name}_emu_checked PRIVATE ${FOVEA_WARNINGS} -Wno-sign-compare -Wno-unused-parameter
                                                       ${FOVEA_EMU_CHECKED_FLAGS})
    target_link_libraries(${name}_emu_checked PUBLIC fovea_core fovea_emu ${K_LINK})
    # After NAME_emu on every link line: its objects resolve the anchors of the normal ones.
    target_link_libraries(${name}_emu PUBLIC ${name}_emu_checked)
  endif()
  add_library(${name} INTERFACE)
  target_link_libraries(${name} INTERFACE ${name}_emu)

  if(FOVEA_HAVE_CUDA AND NOT K_EMU_ONLY)
    add_library(${name}_cuda STATIC ${K_SOURCES})
    target_compile_definitions(${name}_cuda PRIVATE FOVEA_KERNEL_NS=cuda_kernels)
    target_compile_options(${name}_cuda PRIVATE
      $<$<COMPILE_LANGUAGE:CUDA>:--expt-relaxed-constexpr -lineinfo -Xcompiler=-Wall,-Wextra,-Wno-unknown-pragmas>)
    set_target_properties(${name}_cuda PROPERTIES CUDA_SEPARABLE_COMPILATION OFF POSITION_INDEPENDENT_CODE ON)
    target_link_libraries(${name}_cuda PUBLIC fovea_core CUDA::cudart ${K_LINK})
    # ptxas's registers and shared memory per kernel, for `fovea profile`'s occupancy: kept by a compiler launcher
    # (no extra compile), gathered into kernel_resources/NAME.tsv after every build of the library.
    target_compile_options(${name}_cuda PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:-Xptxas=-v>)
    set(launcher ${PROJECT_SOURCE_DIR}/cmake/ptxas_log.sh)
    if(CMAKE_CUDA_COMPILER_LAUNCHER)
      list(APPEND launcher ${CMAKE_CUDA_COMPILER_LAUNCHER})
    endif()
    set_target_properties(${name}_cuda PROPERTIES CUDA_COMPILER_LAUNCHER "${launcher}")
    add_custom_command(TARGET ${name}_cuda POST_BUILD
                       COMMAND ${CMAKE_COMMAND} -DDIR=${CMAKE_CURRENT_BINARY_DIR}/CMakeFiles/${name}_cuda.dir
                               -DOUT=${PROJECT_BINARY_DIR}/kernel_resources/${name}.tsv
                               -P ${PROJECT_SOURCE_DIR}/cmake/FoveaPtxasTable.cmake
                       VERBATIM)
    target_link_libraries(${name} INTERFACE ${name}_cuda)
  endif()
endfunction()
