#include "core/pth.h"

#include <array>
#include <bit>
#include <cstring>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/float16.h"
#include "core/io.h"
#include "core/zip_reader.h"

namespace fovea {
namespace {

static_assert(std::endian::native == std::endian::little, "the storages of a .pth file are read as little-endian");

// The storage types torch.save names in its persistent ids, and what fovea makes of each.
struct StorageType {
  const char* global;       // torch.<global>
  const char* torch_dtype;  // for messages and TorchWeights::torch_dtypes
  int elem_size;
  DType out;
};
constexpr StorageType kStorageTypes[] = {
    {"FloatStorage", "float32", 4, DType::float32}, {"DoubleStorage", "float64", 8, DType::float32},
    {"HalfStorage", "float16", 2, DType::float32},  {"BFloat16Storage", "bfloat16", 2, DType::float32},
    {"LongStorage", "int64", 8, DType::int64},      {"IntStorage", "int32", 4, DType::int32},
    {"ShortStorage", "int16", 2, DType::int32},     {"CharStorage", "int8", 1, DType::int32},
    {"ByteStorage", "uint8", 1, DType::uint8},      {"BoolStorage", "bool", 1, DType::uint8},
};
constexpr int kNumStorageTypes = int(sizeof kStorageTypes / sizeof kStorageTypes[0]);

// Sizes a file may claim: a dimension, a stride, an offset or an element count above this is refused.
constexpr uint64_t kMaxElements = uint64_t(1) << 40;
// The tensors built may hold at most this many times the elements of the file's storages, plus
// kExtraElements: views of one storage (tied weights) and stride-0 expansions are materialised as
// copies, and this bounds what a small hostile file can make us allocate.
constexpr uint64_t kMaxCopyFactor = 4, kExtraElements = uint64_t(1) << 24;

// The legacy format starts with this number pickled as a LONG1 (0x1950a86a20f9469cfc6c).
constexpr char kLegacyMagic[] = "\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19";
constexpr int64_t kLegacyProtocol = 1001;

enum class Kind : uint8_t { None, Bool, Int, BigInt, Float, Str, Tuple, List, Dict, Global, Storage, Tensor };
// The callables the allowlist knows. Only their effect is reproduced; nothing is looked up or called.
enum class Callable : uint8_t { OrderedDict, RebuildTensorV2, RebuildTensor, RebuildParameter, StorageType };

struct Obj {
  Kind kind = Kind::None;
  int64_t i = 0;                                  // Bool, Int; Storage and Tensor: index in Heap::views / Heap::tensors
  Callable callable{};                            // Global
  int storage_type = -1;                          // Global naming a storage type: index in kStorageTypes
  double f = 0;                                   // Float
  std::string s;                                  // Str; BigInt: its little-endian bytes; Global: "module.name"
  std::vector<int> items;                         // Tuple, List; Dict: key, value, key, value, ...
  std::unordered_map<std::string, size_t> index;  // Dict: key -> position of the key in items
};

// A storage as the file stores it (one zip entry or one legacy blob).
struct Root {
  std::string key;
  int type = 0;
  uint64_t numel = 0;
  std::string_view bytes;  // set once the storage's data is located
};
// A storage as a tensor sees it: elements [base, base + numel) of a root (legacy storage views).
struct StorageView {
  int root = 0;
  uint64_t base = 0, numel = 0;
};
struct TensorRec {
  int view = 0;
  int64_t offset = 0;
  std::vector<int64_t> size, stride;
};

// Everything the pickles of one file build; objects refer to each other by index, so that
// reference cycles a hostile pickle may build are harmless.
struct Heap {
  std::vector<Obj> objs;
  std::vector<Root> roots;
  std::unordered_map<std::string, int> root_by_key;
  std::vector<StorageView> views;
  std::vector<TensorRec> tensors;
  int add(Obj o) {
    objs.push_back(std::move(o));
    return int(objs.size() - 1);
  }
  int add(Kind k) {
    Obj o;
    o.kind = k;
    return add(std::move(o));
  }
};

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::None: return "None";
    case Kind::Bool: return "bool";
    case Kind::Int: return "int";
    case Kind::BigInt: return "int";
    case Kind::Float: return "float";
    case Kind::Str: return "str";
    case Kind::Tuple: return "tuple";
    case Kind::List: return "list";
    case Kind::Dict: return "dict";
    case Kind::Global: return "global";
    case Kind::Storage: return "storage";
    case Kind::Tensor: return "tensor";
  }
  return "?";
}

const char* opcode_name(uint8_t op) {
  switch (op) {
    case '(': return "MARK";
    case '.': return "STOP";
    case '0': return "POP";
    case '1': return "POP_MARK";
    case '2': return "DUP";
    case 'F': return "FLOAT";
    case 'I': return "INT";
    case 'J': return "BININT";
    case 'K': return "BININT1";
    case 'L': return "LONG";
    case 'M': return "BININT2";
    case 'N': return "NONE";
    case 'P': return "PERSID";
    case 'Q': return "BINPERSID";
    case 'R': return "REDUCE";
    case 'S': return "STRING";
    case 'T': return "BINSTRING";
    case 'U': return "SHORT_BINSTRING";
    case 'V': return "UNICODE";
    case 'X': return "BINUNICODE";
    case 'a': return "APPEND";
    case 'b': return "BUILD";
    case 'c': return "GLOBAL";
    case 'd': return "DICT";
    case '}': return "EMPTY_DICT";
    case 'e': return "APPENDS";
    case 'g': return "GET";
    case 'h': return "BINGET";
    case 'i': return "INST";
    case 'j': return "LONG_BINGET";
    case 'l': return "LIST";
    case ']': return "EMPTY_LIST";
    case 'o': return "OBJ";
    case 'p': return "PUT";
    case 'q': return "BINPUT";
    case 'r': return "LONG_BINPUT";
    case 's': return "SETITEM";
    case 't': return "TUPLE";
    case ')': return "EMPTY_TUPLE";
    case 'u': return "SETITEMS";
    case 'G': return "BINFLOAT";
    case 'B': return "BINBYTES";
    case 'C': return "SHORT_BINBYTES";
    case 0x80: return "PROTO";
    case 0x81: return "NEWOBJ";
    case 0x82: return "EXT1";
    case 0x83: return "EXT2";
    case 0x84: return "EXT4";
    case 0x85: return "TUPLE1";
    case 0x86: return "TUPLE2";
    case 0x87: return "TUPLE3";
    case 0x88: return "NEWTRUE";
    case 0x89: return "NEWFALSE";
    case 0x8a: return "LONG1";
    case 0x8b: return "LONG4";
    case 0x8c: return "SHORT_BINUNICODE";
    case 0x8d: return "BINUNICODE8";
    case 0x8e: return "BINBYTES8";
    case 0x8f: return "EMPTY_SET";
    case 0x90: return "ADDITEMS";
    case 0x91: return "FROZENSET";
    case 0x92: return "NEWOBJ_EX";
    case 0x93: return "STACK_GLOBAL";
    case 0x94: return "MEMOIZE";
    case 0x95: return "FRAME";
    case 0x96: return "BYTEARRAY8";
    case 0x97: return "NEXT_BUFFER";
    case 0x98: return "READONLY_BUFFER";
  }
  return "unknown";
}

std::string opcode_str(uint8_t op) {
  char hex[8];
  std::snprintf(hex, sizeof hex, "0x%02x", op);
  const bool printable = op >= 0x20 && op < 0x7f;
  return cat("opcode ", hex, printable ? cat(" '", char(op), "'") : std::string(), " (", opcode_name(op), ")");
}

// One pickle, read from `data` (whose first byte is at byte offset `base` of what `where` names).
class Unpickler {
 public:
  Unpickler(std::string_view data, uint64_t base, std::string where, Heap* heap)
      : data_(data), base_(base), where_(std::move(where)), heap_(*heap) {}

  // Runs to STOP; returns the pickled object. `end()` is then the offset just past STOP.
  int load() {
    for (;;) {
      if (pos_ >= data_.size()) fail_at(pos_, "the pickle ends without a STOP opcode (truncated?)");
      op_at_ = pos_;
      const uint8_t op = uint8_t(data_[pos_++]);
      switch (op) {
        case 0x80: {  // PROTO
          const uint64_t v = read_le(1);
          if (v < 2 || v > 5) fail("pickle protocol ", v, " is not supported (2 to 5)");
          break;
        }
        case 0x95: read_le(8); break;  // FRAME: a length hint for buffered readers
        case '.':                      // STOP
          if (stack_.size() != 1 || !marks_.empty())
            fail("STOP with ", stack_.size(), " values on the stack and ", marks_.size(), " open marks");
          return stack_.back();
        case '(': marks_.push_back(stack_.size()); break;
        case ')': push(heap_.add(Kind::Tuple)); break;
        case ']': push(heap_.add(Kind::List)); break;
        case '}': push(heap_.add(Kind::Dict)); break;
        case 'N': push(heap_.add(Kind::None)); break;
        case 0x88: push(make_int(1, Kind::Bool)); break;
        case 0x89: push(make_int(0, Kind::Bool)); break;
        case 'J': push(make_int(int64_t(int32_t(uint32_t(read_le(4)))))); break;
        case 'K': push(make_int(int64_t(read_le(1)))); break;
        case 'M': push(make_int(int64_t(read_le(2)))); break;
        case 0x8a: long1(); break;
        case 'G': {  // BINFLOAT: big-endian IEEE double
          const std::string_view b = take(8);
          uint64_t bits = 0;
          for (char c : b) bits = (bits << 8) | uint8_t(c);
          Obj o;
          o.kind = Kind::Float;
          std::memcpy(&o.f, &bits, 8);
          push(heap_.add(std::move(o)));
          break;
        }
        case 'X': push(make_str(take(read_le(4)))); break;
        case 0x8c: push(make_str(take(read_le(1)))); break;
        case 't': push(make_tuple(pop_mark())); break;
        case 0x85: push(make_tuple(pop_n(1))); break;
        case 0x86: push(make_tuple(pop_n(2))); break;
        case 0x87: push(make_tuple(pop_n(3))); break;
        case 'a': {
          const int v = pop();
          append(top(), {v});
          break;
        }
        case 'e': {
          const std::vector<int> vs = pop_mark();
          append(top(), vs);
          break;
        }
        case 's': {
          const std::vector<int> kv = pop_n(2);
          set_items(top(), kv);
          break;
        }
        case 'u': {
          const std::vector<int> kv = pop_mark();
          if (kv.size() % 2) fail("SETITEMS with an odd number (", kv.size(), ") of keys and values");
          set_items(top(), kv);
          break;
        }
        case 'q': memo_[read_le(1)] = top(); break;
        case 'r': memo_[read_le(4)] = top(); break;
        case 0x94: memo_[memo_.size()] = top(); break;  // MEMOIZE
        case 'h': push(memo_get(read_le(1))); break;
        case 'j': push(memo_get(read_le(4))); break;
        case 'c': {  // GLOBAL: "module\nname\n"
          const std::string module(line()), name(line());
          push(make_global(module, name));
          break;
        }
        case 0x93: {  // STACK_GLOBAL
          const int name = pop(), module = pop();
          if (obj(module).kind != Kind::Str || obj(name).kind != Kind::Str)
            fail("STACK_GLOBAL needs two strings, got ", kind_name(obj(module).kind), " and ",
                 kind_name(obj(name).kind));
          push(make_global(obj(module).s, obj(name).s));
          break;
        }
        case 'Q': push(persistent_load(pop())); break;
        case 'R': {
          const int args = pop(), callable = pop();
          push(reduce(callable, args));
          break;
        }
        case 'b': {
          const int state = pop();
          build(top(), state);
          break;
        }
        default:
          fail(opcode_str(op),
               " is not allowed: fovea reads only the pickle opcodes of a state_dict and never runs code from a file");
      }
    }
  }
  uint64_t end() const { return pos_; }

 private:
  template <typename... Args>
  [[noreturn]] void fail_at(uint64_t at, const Args&... what) {
    FOVEA_FAIL(where_, ": ", what..., " (at byte offset ", base_ + at, ")");
  }
  template <typename... Args>
  [[noreturn]] void fail(const Args&... what) {
    fail_at(op_at_, what...);
  }

  std::string_view take(uint64_t n) {
    if (n > data_.size() - pos_)
      fail(opcode_str(uint8_t(data_[op_at_])), " needs ", n, " bytes but the pickle has ", data_.size() - pos_,
           " left (truncated?)");
    const std::string_view s = data_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  uint64_t read_le(int n) {
    const std::string_view b = take(uint64_t(n));
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; --i) v = (v << 8) | uint8_t(b[i]);
    return v;
  }
  std::string_view line() {
    const size_t nl = data_.find('\n', pos_);
    if (nl == std::string_view::npos) fail("GLOBAL without a terminating newline (truncated?)");
    const std::string_view s = data_.substr(pos_, nl - pos_);
    pos_ = nl + 1;
    return s;
  }

  const Obj& obj(int id) const { return heap_.objs[size_t(id)]; }
  Obj& obj(int id) { return heap_.objs[size_t(id)]; }
  void push(int id) { stack_.push_back(id); }
  int top() {
    if (stack_.size() <= (marks_.empty() ? 0 : marks_.back())) fail("stack underflow");
    return stack_.back();
  }
  int pop() {
    const int v = top();
    stack_.pop_back();
    return v;
  }
  std::vector<int> pop_n(size_t n) {
    const size_t floor = marks_.empty() ? 0 : marks_.back();
    if (stack_.size() < floor + n) fail("stack underflow");
    std::vector<int> out(stack_.end() - std::ptrdiff_t(n), stack_.end());
    stack_.resize(stack_.size() - n);
    return out;
  }
  std::vector<int> pop_mark() {
    if (marks_.empty()) fail("no MARK to pop to");
    const size_t m = marks_.back();
    marks_.pop_back();
    std::vector<int> out(stack_.begin() + std::ptrdiff_t(m), stack_.end());
    stack_.resize(m);
    return out;
  }
  int memo_get(uint64_t i) {
    const auto it = memo_.find(i);
    if (it == memo_.end()) fail("memo entry ", i, " was never stored");
    return it->second;
  }

  int make_int(int64_t v, Kind k = Kind::Int) {
    Obj o;
    o.kind = k;
    o.i = v;
    return heap_.add(std::move(o));
  }
  int make_str(std::string_view s) {
    Obj o;
    o.kind = Kind::Str;
    o.s.assign(s);
    return heap_.add(std::move(o));
  }
  int make_tuple(std::vector<int> items) {
    Obj o;
    o.kind = Kind::Tuple;
    o.items = std::move(items);
    return heap_.add(std::move(o));
  }
  // LONG1: a little-endian two's complement integer of n bytes. Up to 8 bytes is an int; longer
  // ones (the legacy format's magic number) are kept as bytes and usable for comparison only.
  void long1() {
    const uint64_t n = read_le(1);
    const std::string_view b = take(n);
    if (n > 8) {
      Obj o;
      o.kind = Kind::BigInt;
      o.s.assign(b);
      push(heap_.add(std::move(o)));
      return;
    }
    uint64_t v = 0;
    for (uint64_t i = n; i-- > 0;) v = (v << 8) | uint8_t(b[i]);
    if (n > 0 && n < 8 && (uint8_t(b[n - 1]) & 0x80)) v |= ~uint64_t(0) << (8 * n);  // sign-extend
    push(make_int(int64_t(v)));
  }

  int make_global(const std::string& module, const std::string& name) {
    Obj o;
    o.kind = Kind::Global;
    o.s = module + "." + name;
    if (module == "collections" && name == "OrderedDict") {
      o.callable = Callable::OrderedDict;
    } else if (module == "torch._utils" && name == "_rebuild_tensor_v2") {
      o.callable = Callable::RebuildTensorV2;
    } else if (module == "torch._utils" && name == "_rebuild_tensor") {
      o.callable = Callable::RebuildTensor;
    } else if (module == "torch._utils" && name == "_rebuild_parameter") {
      o.callable = Callable::RebuildParameter;
    } else {
      // Before PyTorch 1.x, storages saved from a GPU were pickled as torch.cuda.<T>Storage.
      for (int t = 0; t < kNumStorageTypes && o.storage_type < 0; ++t)
        if ((module == "torch" || module == "torch.cuda") && name == kStorageTypes[t].global) o.storage_type = t;
      if (o.storage_type < 0)
        fail("global '", o.s, "' (", opcode_name(uint8_t(data_[op_at_])),
             ") is not allowed: fovea loads only state_dicts (tensors, storages, OrderedDict, numbers, strings) "
             "and never runs code from a file");
      o.callable = Callable::StorageType;
    }
    return heap_.add(std::move(o));
  }

  std::string dict_key(int k) {
    const Obj& o = obj(k);
    switch (o.kind) {
      case Kind::Str: return "s" + o.s;
      case Kind::Int:
      case Kind::Bool: return "i" + std::to_string(o.i);  // Python: True == 1 as a key
      case Kind::None: return "n";
      default: fail("a dict key of type ", kind_name(o.kind), " is not supported (str, int, bool, None)");
    }
  }
  void append(int list, const std::vector<int>& values) {
    if (obj(list).kind != Kind::List) fail("APPEND(S) to a ", kind_name(obj(list).kind), ", not a list");
    auto& items = obj(list).items;
    items.insert(items.end(), values.begin(), values.end());
  }
  void set_items(int dict, const std::vector<int>& kv) {
    if (obj(dict).kind != Kind::Dict) fail("SETITEM(S) on a ", kind_name(obj(dict).kind), ", not a dict");
    for (size_t j = 0; j < kv.size(); j += 2) {
      const std::string key = dict_key(kv[j]);
      Obj& d = obj(dict);  // after dict_key: no reallocation of objs happens in between
      const auto it = d.index.find(key);
      if (it != d.index.end()) {
        d.items[it->second + 1] = kv[j + 1];
      } else {
        d.index.emplace(key, d.items.size());
        d.items.push_back(kv[j]);
        d.items.push_back(kv[j + 1]);
      }
    }
  }

  int64_t as_int(int id, const char* what) {
    const Obj& o = obj(id);
    if (o.kind == Kind::BigInt) fail(what, " is an integer wider than 64 bits");
    if (o.kind != Kind::Int) fail(what, " is a ", kind_name(o.kind), ", not an int");
    return o.i;
  }
  int64_t as_size(int id, const char* what) {
    const int64_t v = as_int(id, what);
    if (v < 0 || uint64_t(v) > kMaxElements) fail(what, " is ", v, ", outside [0, 2^40]");
    return v;
  }
  const Obj& as(int id, Kind k, const char* what) {
    if (obj(id).kind != k) fail(what, " is a ", kind_name(obj(id).kind), ", not a ", kind_name(k));
    return obj(id);
  }

  // BINPERSID: ('storage', torch.<T>Storage, key, location, numel[, view]) -> a storage.
  int persistent_load(int pid) {
    const Obj& t = as(pid, Kind::Tuple, "a persistent id");
    if (t.items.size() != 5 && t.items.size() != 6)
      fail("a persistent id with ", t.items.size(), " elements (a storage's has 5, or 6 in the legacy format)");
    const std::vector<int> it = t.items;
    if (as(it[0], Kind::Str, "persistent id element 0").s != "storage")
      fail("persistent id of kind '", obj(it[0]).s, "' (only 'storage' is known)");
    const Obj& type = as(it[1], Kind::Global, "persistent id element 1 (the storage type)");
    if (type.storage_type < 0) fail("the storage type '", type.s, "' is not a torch storage type");
    const int type_index = type.storage_type;
    const std::string key = as(it[2], Kind::Str, "the storage key").s;
    as(it[3], Kind::Str, "the storage location");  // "cpu", "cuda:0", ...: everything is read to the CPU
    const uint64_t numel = uint64_t(as_size(it[4], "the storage size"));
    auto found = heap_.root_by_key.find(key);
    if (found == heap_.root_by_key.end()) {
      found = heap_.root_by_key.emplace(key, int(heap_.roots.size())).first;
      heap_.roots.push_back(Root{key, type_index, numel, {}});
    } else {
      const Root& r = heap_.roots[size_t(found->second)];
      if (r.type != type_index || r.numel != numel)
        fail("storage '", key, "' appears as ", kStorageTypes[r.type].global, " of ", r.numel, " elements and as ",
             kStorageTypes[type_index].global, " of ", numel);
    }
    StorageView v{found->second, 0, numel};
    if (t.items.size() == 6 && obj(it[5]).kind != Kind::None) {  // legacy: a view (key, offset, size) of the root
      const Obj& view = as(it[5], Kind::Tuple, "the storage view");
      if (view.items.size() != 3) fail("a storage view with ", view.items.size(), " elements (needs 3)");
      const std::vector<int> vi = view.items;
      v.base = uint64_t(as_size(vi[1], "the storage view offset"));
      v.numel = uint64_t(as_size(vi[2], "the storage view size"));
      if (v.base > numel || v.numel > numel - v.base)
        fail("storage view [", v.base, ", ", v.base + v.numel, ") is outside storage '", key, "' of ", numel,
             " elements");
    }
    heap_.views.push_back(v);
    Obj o;
    o.kind = Kind::Storage;
    o.i = int64_t(heap_.views.size() - 1);
    return heap_.add(std::move(o));
  }

  int make_tensor(int storage, int offset, int size, int stride) {
    TensorRec t;
    t.view = int(as(storage, Kind::Storage, "the tensor's storage").i);
    t.offset = as_size(offset, "the tensor's storage offset");
    const std::vector<int> sz = as(size, Kind::Tuple, "the tensor's size").items;
    const std::vector<int> st = as(stride, Kind::Tuple, "the tensor's stride").items;
    if (sz.size() != st.size()) fail("the tensor's size has ", sz.size(), " dimensions but its stride ", st.size());
    if (sz.size() > size_t(Shape::kMaxDims))
      fail("a tensor of ", sz.size(), " dimensions (fovea supports at most ", Shape::kMaxDims, ")");
    for (int d : sz) t.size.push_back(as_size(d, "a tensor dimension"));
    for (int d : st) t.stride.push_back(as_size(d, "a tensor stride"));
    heap_.tensors.push_back(std::move(t));
    Obj o;
    o.kind = Kind::Tensor;
    o.i = int64_t(heap_.tensors.size() - 1);
    return heap_.add(std::move(o));
  }

  int reduce(int callable, int args_id) {
    const Obj& c = obj(callable);
    if (c.kind != Kind::Global) fail("REDUCE calls a ", kind_name(c.kind), ", not an allowed global");
    const std::vector<int> args = as(args_id, Kind::Tuple, "REDUCE's arguments").items;
    const std::string name = c.s;
    const auto nargs = [&](size_t lo, size_t hi) {
      if (args.size() < lo || args.size() > hi)
        fail("REDUCE of ", name, " with ", args.size(), " arguments (expected ", lo, lo == hi ? "" : cat(" to ", hi),
             ")");
    };
    switch (c.callable) {
      case Callable::OrderedDict: nargs(0, 0); return heap_.add(Kind::Dict);
      case Callable::RebuildTensorV2:
        // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
        nargs(6, 7);
        as(args[4], Kind::Bool, "requires_grad");
        if (!as(args[5], Kind::Dict, "backward_hooks").items.empty())
          fail("a tensor with backward hooks (they would be code) is not allowed");
        if (args.size() == 7 && obj(args[6]).kind != Kind::None && obj(args[6]).kind != Kind::Dict)
          fail("the tensor's metadata is a ", kind_name(obj(args[6]).kind));
        return make_tensor(args[0], args[1], args[2], args[3]);
      case Callable::RebuildTensor:  // (storage, storage_offset, size, stride), before PyTorch 0.4
        nargs(4, 4);
        return make_tensor(args[0], args[1], args[2], args[3]);
      case Callable::RebuildParameter:  // (data, requires_grad, backward_hooks): the data is all we keep
        nargs(3, 3);
        as(args[0], Kind::Tensor, "the parameter's data");
        as(args[1], Kind::Bool, "requires_grad");
        if (!as(args[2], Kind::Dict, "backward_hooks").items.empty())
          fail("a parameter with backward hooks (they would be code) is not allowed");
        return args[0];
      case Callable::StorageType: break;
    }
    fail("REDUCE of '", name, "' is not allowed: a storage type may only name a persistent id's storage");
  }

  // BUILD sets an object's attributes: allowed only on a dict (a state_dict's OrderedDict carries
  // `_metadata`, which fovea does not need).
  void build(int target, int state) {
    const Kind k = obj(target).kind, s = obj(state).kind;
    if (k != Kind::Dict || (s != Kind::Dict && s != Kind::None))
      fail("BUILD on a ", kind_name(k), " with a ", kind_name(s), " state is not allowed (only a dict's attributes)");
  }

  std::string_view data_;
  uint64_t base_;
  std::string where_;
  Heap& heap_;
  uint64_t pos_ = 0, op_at_ = 0;
  std::vector<int> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, int> memo_;
};

// Copies (and converts) a tensor's elements out of its storage, in row-major order.
template <typename Out, typename Convert>
void gather(const char* root, const TensorRec& t, uint64_t base, int elem_size, Out* dst, int64_t n, Convert conv) {
  const int nd = int(t.size.size());
  std::array<int64_t, Shape::kMaxDims> c{};
  uint64_t off = base + uint64_t(t.offset);
  for (int64_t k = 0; k < n; ++k) {
    dst[k] = conv(root + off * uint64_t(elem_size));
    for (int d = nd - 1; d >= 0; --d) {
      if (++c[d] < t.size[d]) {
        off += uint64_t(t.stride[d]);
        break;
      }
      off -= uint64_t((t.size[d] - 1) * t.stride[d]);
      c[d] = 0;
    }
  }
}

template <typename T>
T load(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

class Materializer {
 public:
  Materializer(const Heap& heap, std::string where) : heap_(heap), where_(std::move(where)) {
    uint64_t total = 0;
    for (const Root& r : heap.roots) total += r.numel;  // each <= 2^40: no overflow
    budget_ = total * kMaxCopyFactor + kExtraElements;
  }

  Tensor operator()(const TensorRec& t, const std::string& name) {
    const StorageView& v = heap_.views[size_t(t.view)];
    const Root& r = heap_.roots[size_t(v.root)];
    const StorageType& type = kStorageTypes[r.type];
    const auto bad = [&](const auto&... what) { FOVEA_FAIL(where_, ": tensor '", name, "': ", what...); };
    uint64_t numel = 1, last = uint64_t(t.offset);
    bool overflow = false;
    for (size_t d = 0; d < t.size.size(); ++d) {
      uint64_t span = 0;
      overflow = overflow || __builtin_mul_overflow(numel, uint64_t(t.size[d]), &numel) ||
                 (t.size[d] > 0 && (__builtin_mul_overflow(uint64_t(t.size[d] - 1), uint64_t(t.stride[d]), &span) ||
                                    __builtin_add_overflow(last, span, &last)));
    }
    const Shape shape(t.size);
    if (overflow || numel > kMaxElements) bad("shape ", shape.str(), " describes more than 2^40 elements");
    if (numel > 0 && last >= v.numel)
      bad("shape ", shape.str(), " with stride ", Shape(t.stride).str(), " and offset ", t.offset, " reaches element ",
          last, " of storage '", r.key, "', which has ", v.numel);
    if (numel > budget_)
      bad(numel, " elements exceed what the file's storages can account for (views and expansions are copied; ",
          "at most ", kMaxCopyFactor, "x the storages' elements in all)");
    budget_ -= numel;
    Tensor out = Tensor::empty(shape, type.out, kCPU);
    const char* p = r.bytes.data();
    const int64_t cnt = int64_t(numel);
    const int es = type.elem_size;
    const std::string dt = type.torch_dtype;
    if (dt == "float32") {
      gather(p, t, v.base, es, out.data<float>(), cnt, [](const char* q) { return load<float>(q); });
    } else if (dt == "float64") {
      gather(p, t, v.base, es, out.data<float>(), cnt, [](const char* q) { return float(load<double>(q)); });
    } else if (dt == "float16") {
      gather(p, t, v.base, es, out.data<float>(), cnt, [](const char* q) { return half_to_float(load<uint16_t>(q)); });
    } else if (dt == "bfloat16") {
      gather(p, t, v.base, es, out.data<float>(), cnt,
             [](const char* q) { return bfloat16_to_float(load<uint16_t>(q)); });
    } else if (dt == "int64") {
      gather(p, t, v.base, es, out.data<int64_t>(), cnt, [](const char* q) { return load<int64_t>(q); });
    } else if (dt == "int32") {
      gather(p, t, v.base, es, out.data<int32_t>(), cnt, [](const char* q) { return load<int32_t>(q); });
    } else if (dt == "int16") {
      gather(p, t, v.base, es, out.data<int32_t>(), cnt, [](const char* q) { return int32_t(load<int16_t>(q)); });
    } else if (dt == "int8") {
      gather(p, t, v.base, es, out.data<int32_t>(), cnt, [](const char* q) { return int32_t(load<int8_t>(q)); });
    } else if (dt == "uint8") {
      gather(p, t, v.base, es, out.data<uint8_t>(), cnt, [](const char* q) { return load<uint8_t>(q); });
    } else {  // bool
      gather(p, t, v.base, es, out.data<uint8_t>(), cnt, [](const char* q) { return uint8_t(*q != 0); });
    }
    return out;
  }

 private:
  const Heap& heap_;
  std::string where_;
  uint64_t budget_ = 0;
};

const char* describe(const Heap& heap, int id) {
  const Obj& o = heap.objs[size_t(id)];
  return o.kind == Kind::Global ? o.s.c_str() : kind_name(o.kind);
}

// Finds the state_dict in the pickled object: a dict of tensors, or a dict holding one under
// "state_dict" or "model" (then out->state_dict_key names it). Refuses anything else.
void extract(const Heap& heap, int top, const std::string& where, TorchWeights* out) {
  const Obj& o = heap.objs[size_t(top)];
  FOVEA_CHECK(o.kind == Kind::Dict, where, ": the pickled object is a ", describe(heap, top),
              ", not a state_dict (a dict of tensors)");
  // The first entry of `d` that is not a string key with a tensor value, or -1.
  const auto first_non_tensor = [&](const Obj& d) -> int {
    for (size_t j = 0; j < d.items.size(); j += 2)
      if (heap.objs[size_t(d.items[j])].kind != Kind::Str || heap.objs[size_t(d.items[j + 1])].kind != Kind::Tensor)
        return int(j);
    return -1;
  };
  const auto entry = [&](const Obj& d, int j) {
    const Obj& k = heap.objs[size_t(d.items[size_t(j)])];
    const std::string key = k.kind == Kind::Str ? cat("'", k.s, "'") : cat("(a ", kind_name(k.kind), " key)");
    return cat("entry ", key, " is a ", describe(heap, d.items[size_t(j) + 1]));
  };
  const Obj* sd = nullptr;
  const int bad_top = first_non_tensor(o);
  if (bad_top < 0) {
    sd = &o;
  } else {
    for (const char* key : {"state_dict", "model"}) {
      const auto it = o.index.find(std::string("s") + key);
      if (it == o.index.end()) continue;
      const Obj& v = heap.objs[size_t(o.items[it->second + 1])];
      if (v.kind != Kind::Dict) continue;
      const int bad = first_non_tensor(v);
      FOVEA_CHECK(bad < 0, where, ": the checkpoint's '", key, "' is not a state_dict: its ", entry(v, bad),
                  ", not a tensor");
      sd = &v;
      out->state_dict_key = key;
      break;
    }
    FOVEA_CHECK(sd, where, ": the pickled dict is not a state_dict: its ", entry(o, bad_top),
                ", not a tensor, and it has no 'state_dict' or 'model' entry holding one");
  }
}

// The tensors of the state_dict `top` refers to (after extract() chose it).
void materialize_all(const Heap& heap, int top, const std::string& where, TorchWeights* out) {
  const Obj& o = heap.objs[size_t(top)];
  const Obj* sd = &o;
  if (!out->state_dict_key.empty()) sd = &heap.objs[size_t(o.items[o.index.at("s" + out->state_dict_key) + 1])];
  Materializer make(heap, where);
  for (size_t j = 0; j < sd->items.size(); j += 2) {
    const std::string& name = heap.objs[size_t(sd->items[j])].s;
    const TensorRec& t = heap.tensors[size_t(heap.objs[size_t(sd->items[j + 1])].i)];
    out->tensors[name] = make(t, name);
    out->torch_dtypes[name] = kStorageTypes[heap.roots[size_t(heap.views[size_t(t.view)].root)].type].torch_dtype;
  }
}

uint64_t storage_bytes(const Root& r, const std::string& where) {
  uint64_t n = 0;
  FOVEA_CHECK(!__builtin_mul_overflow(r.numel, uint64_t(kStorageTypes[r.type].elem_size), &n), where, ": storage '",
              r.key, "' is too large");
  return n;
}

TorchWeights parse_zip(const std::string& bytes, const std::string& name) {
  ZipReader zip(bytes, name);
  // torch.save names every entry "<prefix>/...", the prefix taken from the file name ("archive" for buffers).
  const ZipEntry* pkl = nullptr;
  std::string prefix;
  for (const ZipEntry& e : zip.entries()) {
    const size_t slash = e.name.find('/');
    if (slash == std::string::npos || e.name.compare(slash, std::string::npos, "/data.pkl") != 0) continue;
    FOVEA_CHECK(!pkl, "PyTorch file '", name, "': two pickles ('", pkl ? pkl->name : "", "' and '", e.name,
                "'): not a torch.save file");
    pkl = &e;
    prefix = e.name.substr(0, slash);
  }
  FOVEA_CHECK(pkl, "PyTorch file '", name, "': a zip archive without a '<name>/data.pkl' entry: not a torch.save file");
  if (const ZipEntry* bo = zip.find(prefix + "/byteorder")) {
    std::string scratch;
    const std::string_view order = zip.read(*bo, &scratch, 64);
    FOVEA_CHECK(order == "little", "PyTorch file '", name, "': byte order '", order,
                "' is not supported (only little-endian)");
  }
  const std::string where = cat("PyTorch file '", name, "' (entry '", pkl->name, "')");
  std::string pkl_scratch;
  const std::string_view pickle = zip.read(*pkl, &pkl_scratch);
  Heap heap;
  const int top = Unpickler(pickle, 0, where, &heap).load();
  TorchWeights out;
  out.format = "zip";
  extract(heap, top, where, &out);
  // Locate every storage's bytes (only the ones the state_dict uses need to exist, but torch.save
  // writes every storage the pickle names).
  std::vector<std::string> scratch(heap.roots.size());
  for (size_t i = 0; i < heap.roots.size(); ++i) {
    Root& r = heap.roots[i];
    const std::string entry_name = prefix + "/data/" + r.key;
    const ZipEntry* e = zip.find(entry_name);
    FOVEA_CHECK(e, "PyTorch file '", name, "': storage '", r.key, "' has no entry '", entry_name, "'");
    const uint64_t need = storage_bytes(r, where);
    FOVEA_CHECK(e->size == need, "PyTorch file '", name, "': entry '", entry_name, "' holds ", e->size,
                " bytes, but storage '", r.key, "' is ", r.numel, " elements of ", kStorageTypes[r.type].torch_dtype,
                " (", need, " bytes)");
    r.bytes = zip.read(*e, &scratch[i], need);
  }
  materialize_all(heap, top, where, &out);
  return out;
}

TorchWeights parse_legacy(const std::string& bytes, const std::string& name) {
  const std::string where = cat("PyTorch file '", name, "' (legacy format)");
  const std::string_view all(bytes);
  Heap heap;
  uint64_t pos = 0;
  const auto next = [&]() {
    Unpickler u(all.substr(pos), pos, where, &heap);
    const int v = u.load();
    pos += u.end();
    return v;
  };
  const int magic = next();
  FOVEA_CHECK(heap.objs[size_t(magic)].kind == Kind::BigInt && heap.objs[size_t(magic)].s == kLegacyMagic, where,
              ": the magic number is wrong: not a torch.save file");
  const int protocol = next();
  FOVEA_CHECK(heap.objs[size_t(protocol)].kind == Kind::Int && heap.objs[size_t(protocol)].i == kLegacyProtocol, where,
              ": protocol version is not ", kLegacyProtocol);
  const Obj& sys = heap.objs[size_t(next())];
  FOVEA_CHECK(sys.kind == Kind::Dict, where, ": the system information is not a dict");
  if (const auto it = sys.index.find("slittle_endian"); it != sys.index.end()) {
    const Obj& le = heap.objs[size_t(sys.items[it->second + 1])];
    FOVEA_CHECK(le.kind == Kind::Bool && le.i == 1, where, ": written on a big-endian machine, which is not supported");
  }
  const int top = next();
  TorchWeights out;
  out.format = "legacy";
  extract(heap, top, where, &out);
  const Obj& keys = heap.objs[size_t(next())];
  FOVEA_CHECK(keys.kind == Kind::List, where, ": the storage key list is a ", kind_name(keys.kind));
  // Then each storage in the order of the list: an int64 element count and the elements.
  for (int k : keys.items) {
    const Obj& key = heap.objs[size_t(k)];
    FOVEA_CHECK(key.kind == Kind::Str, where, ": a storage key is a ", kind_name(key.kind));
    const auto it = heap.root_by_key.find(key.s);
    FOVEA_CHECK(it != heap.root_by_key.end(), where, ": storage '", key.s, "' is listed but never used");
    Root& r = heap.roots[size_t(it->second)];
    FOVEA_CHECK(r.bytes.data() == nullptr, where, ": storage '", key.s, "' is listed twice");
    FOVEA_CHECK(bytes.size() - pos >= 8, where, ": truncated: storage '", key.s, "' at byte offset ", pos,
                " has no size");
    uint64_t numel = 0;
    for (int i = 7; i >= 0; --i) numel = (numel << 8) | uint8_t(bytes[pos + uint64_t(i)]);
    FOVEA_CHECK(numel == r.numel, where, ": storage '", key.s, "' at byte offset ", pos, " has ", numel,
                " elements, the pickle says ", r.numel);
    pos += 8;
    const uint64_t need = storage_bytes(r, where);
    FOVEA_CHECK(need <= bytes.size() - pos, where, ": truncated: storage '", key.s, "' needs ", need,
                " bytes at byte offset ", pos, ", the file has ", bytes.size() - pos, " left");
    r.bytes = all.substr(pos, need);
    pos += need;
  }
  for (const Root& r : heap.roots)
    FOVEA_CHECK(r.bytes.data() != nullptr, where, ": storage '", r.key, "' is used but not in the storage list");
  materialize_all(heap, top, where, &out);
  return out;
}

}  // namespace

TorchWeights parse_pth(const std::string& bytes, const std::string& name) {
  if (looks_like_zip(bytes)) return parse_zip(bytes, name);
  if (bytes.size() >= 14 && bytes.compare(0, 4, "\x80\x02\x8a\x0a") == 0 && bytes.compare(4, 10, kLegacyMagic) == 0)
    return parse_legacy(bytes, name);
  FOVEA_FAIL("PyTorch file '", name,
             "': neither a zip archive (torch.save since PyTorch 1.6) nor the legacy torch.save format; "
             "TorchScript and other formats are not supported");
}

TorchWeights read_pth(const std::string& path) {
  return parse_pth(read_file(path), path);
}

}  // namespace fovea
