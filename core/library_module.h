// Backend libraries loaded at run time. The cudnn backend (layers/cudnn/, cuDNN + cuBLAS + cuBLASLt) is a
// separate module, libfovea_cudnn.so, opened the first time something asks for backend cudnn, not linked into
// the programs: loading cuBLASLt and cuDNN costs each process about 0.45 s and 200 MB of start-up work (their
// static initialisers), which a run on the CPU or the emulator never needs, and which made up most of the
// test time of a machine without a GPU. The module registers its slots of the dispatch stubs while it
// loads, as the linked-in implementations do while the program starts; its symbols from fovea resolve to
// the program's own (programs that can load it link fovea_impl, which exports them).
//
// Where the module is looked for, in order: $FOVEA_CUDNN_MODULE (a file), the program's folder, the
// program's ../lib, and the build tree's lib/ folder the program was built with.
#pragma once
#include <string>

namespace fovea {

// Loads the cudnn module once (thread-safe); false if this build has none or it cannot be loaded.
bool load_cudnn_module();
// Loads it or throws a DeviceError naming `who`, the paths tried and the loader's message.
void require_cudnn_module(const char* who);
// Loads it if not tried yet and says how that went: "loaded from PATH", or why it is not loaded.
std::string cudnn_module_status();

}  // namespace fovea
