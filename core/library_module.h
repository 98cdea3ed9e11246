// Backend libraries loaded at run time, one module each: backend cudnn (layers/cudnn/, cuDNN + cuBLAS +
// cuBLASLt) is libfovea_cudnn.so, backend onednn (layers/onednn/, oneDNN) is libfovea_onednn.so. A program
// opens a module the first time something asks for its backend, instead of linking it: loading cuBLASLt and
// cuDNN costs each process about 0.45 s and 200 MB of start-up work (their static initialisers), oneDNN's
// JIT and OpenCL loader less but still something, which a run that never asks for them never needs. A module
// registers its slots of the dispatch stubs while it loads, as the linked-in implementations do while the
// program starts; its symbols from fovea resolve to the program's own (programs that can load it link
// fovea_impl, which exports them).
//
// Where a module is looked for, in order: $FOVEA_CUDNN_MODULE / $FOVEA_ONEDNN_MODULE (a file), the program's
// folder, the program's ../lib, and the build tree's lib/ folder the program was built with.
#pragma once
#include <cstdint>
#include <string>

namespace fovea {

enum class Backend : uint8_t;

// Loads the module of backend `b` (cudnn or onednn) once (thread-safe); false if this build has none or it
// cannot be loaded. Backend custom has no module: true.
bool load_module(Backend b);
// Loads it or throws a DeviceError naming `who`, the module, the paths tried and the loader's message (or,
// in a build without the library, an error saying so).
void require_module(Backend b, const char* who);
// Loads it if not tried yet and says how that went: "loaded from PATH", or why it is not loaded.
std::string module_status(Backend b);

}  // namespace fovea
