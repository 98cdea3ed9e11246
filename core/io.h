// Files. Everything fovea writes goes through write_file_atomic, the one writer:
//   - a regular file (or a new one) is written to NAME.tmp.PID in the same folder, synced and renamed over it,
//     so a crash, a full disk or a file-size limit never leaves a half-written checkpoint or output: the
//     previous file stays, and the temporary file is removed;
//   - a symlink is followed: its target is replaced that way and the link stays a link;
//   - /dev/stdout, /dev/stderr, /dev/fd/N and /proc/self/fd/N write to that open descriptor (its offset, its
//     append mode), and other non-regular targets (character devices, FIFOs) are opened and written in place.
// Failures are fovea::Error (runtime, exit 1) naming the file and the system's reason.
#pragma once
#include <cstdio>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace fovea {

void write_file_atomic(const std::string& path, std::string_view bytes);
// The descriptor of /dev/stdout, /dev/stderr, /dev/fd/N or /proc/self/fd/N; -1 for any other path.
int descriptor_path(const std::string& path);

// Where a command's messages go when it writes `output`: stderr when the output is stdout (so that
// `fovea filter in.png /dev/stdout | display` gets the PNG alone), else stdout.
std::FILE* messages_stream(const std::string& output);

// A UsageError when `output` and `input` are the same file (same device and inode, through links or not):
// "--json: 'run/checkpoint.safetensors' is the input --checkpoint; writing it would destroy it".
void refuse_output_over_input(const std::string& output, std::string_view output_flag, const std::string& input,
                              std::string_view input_flag);

// Whole file; an error names the file and the reason (missing, unreadable, not a regular file: a FIFO or a
// device is refused, as reading it could block forever or never end).
std::string read_file(const std::string& path);

// Removes NAME.tmp.PID files in `dir` left by processes that no longer run (killed mid-write); the temporary
// files of live processes are theirs.
void remove_stale_temp_files(const std::string& dir);

// "cannot create directories '/proc/x': No such file or directory": a std::filesystem error in fovea's words.
std::string filesystem_message(const std::filesystem::filesystem_error& e);

}  // namespace fovea
