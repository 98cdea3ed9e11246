# One kernel source, two builds, one binary.
#
# fovea_add_kernels(NAME SOURCES a.cu b.cu ... [LINK libs...]) makes
#   NAME_emu  : every .cu compiled as C++ by the host compiler for the emulator (device 'emu'),
#               through a generated one-line .cpp that #includes it (LANGUAGE is per directory,
#               so the .cu itself cannot be both CUDA and CXX); namespace fovea::emu_kernels.
#   NAME_cuda : the same .cu files compiled by nvcc (device 'cuda'), when the toolkit is found;
#               namespace fovea::cuda_kernels.
#   NAME      : an INTERFACE target linking both.
function(fovea_add_kernels name)
  cmake_parse_arguments(K "" "" "SOURCES;LINK" ${ARGN})
  set(wrappers)
  foreach(src ${K_SOURCES})
    get_filename_component(abs ${src} ABSOLUTE)
    file(RELATIVE_PATH rel ${PROJECT_SOURCE_DIR} ${abs})
    string(MAKE_C_IDENTIFIER ${rel} id)
    set(wrapper ${CMAKE_CURRENT_BINARY_DIR}/emu_wrappers/${id}.cpp)
    file(CONFIGURE OUTPUT ${wrapper} CONTENT "// Generated: builds ${rel} as C++ for the emulator.\n#include \"${abs}\"\n" @ONLY)
    list(APPEND wrappers ${wrapper})
  endforeach()

  add_library(${name}_emu STATIC ${wrappers})
  target_compile_definitions(${name}_emu PRIVATE FOVEA_KERNEL_NS=emu_kernels FOVEA_EMU_BUILD=1)
  target_compile_options(${name}_emu PRIVATE ${FOVEA_WARNINGS} -Wno-sign-compare -Wno-unused-parameter)
  target_link_libraries(${name}_emu PUBLIC fovea_core fovea_emu ${K_LINK})
  add_library(${name} INTERFACE)
  target_link_libraries(${name} INTERFACE ${name}_emu)

  if(FOVEA_HAVE_CUDA)
    add_library(${name}_cuda STATIC ${K_SOURCES})
    target_compile_definitions(${name}_cuda PRIVATE FOVEA_KERNEL_NS=cuda_kernels)
    target_compile_options(${name}_cuda PRIVATE
      $<$<COMPILE_LANGUAGE:CUDA>:--expt-relaxed-constexpr -lineinfo -Xcompiler=-Wall,-Wextra,-Wno-unknown-pragmas>)
    set_target_properties(${name}_cuda PROPERTIES CUDA_SEPARABLE_COMPILATION OFF POSITION_INDEPENDENT_CODE ON)
    target_link_libraries(${name}_cuda PUBLIC fovea_core CUDA::cudart ${K_LINK})
    target_link_libraries(${name} INTERFACE ${name}_cuda)
  endif()
endfunction()
