// blip_convert IN OUT [--model-only]: converts checkpoints between torch.save (.pth / .pt) and
// safetensors. The input format is recognised from its content, the output format from OUT's
// extension. Tensor order is kept, except that safetensors files list tensors in the order
// that format lays them out (by dtype alignment, then name).
//
// Without --model-only, a .pth keeps everything (optimizer, config, epoch, state-dict metadata);
// going to safetensors, 'config' (as JSON) and 'epoch' travel in __metadata__ and come back when
// converting to .pth again; the optimizer state cannot be kept there and is dropped with a note.
#include "blip/blas_kernels.h"
#include "blip/error.h"
#include "blip/io/checkpoint.h"
#include "blip/io/pickle.h"
#include "blip/io/safetensors.h"

#include <CLI/CLI.hpp>
#include "cli_common.h"
#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>

namespace {

namespace io = blip::io;
namespace pk = blip::io::pickle;

enum class Format { Pth, Safetensors };

Format output_format(const std::string& path) {
  const std::string ext = std::filesystem::path(path).extension().string();
  if (ext == ".safetensors") return Format::Safetensors;
  if (ext == ".pth" || ext == ".pt" || ext == ".bin" || ext == ".ckpt") return Format::Pth;
  blip::fail(path, "unknown output extension '" + ext + "' (use .pth, .pt or .safetensors)");
}

// Everything a conversion carries besides the tensors.
struct Extras {
  pk::Value object;  // the whole .pth object, when the input is a .pth
  pk::Value config;
  std::optional<std::int64_t> epoch;
  std::map<std::string, std::string> metadata;  // other safetensors metadata
};

std::size_t convert(const std::string& in, const std::string& out, bool model_only) {
  const Format to = output_format(out);
  io::NamedTensors model;
  Extras extras;
  switch (io::sniff_checkpoint_format(in)) {
    case io::CheckpointFormat::Pth: {
      extras.object = io::load_pth_object(in);
      if (!extras.object.is_dict()) blip::fail(in, "checkpoint is not a dict");
      if (const pk::Value* m = extras.object.get("model")) {
        model = io::state_dict_tensors(*m, in + " ['model']");
        if (const auto* c = extras.object.get("config")) extras.config = *c;
        if (const auto* e = extras.object.get("epoch"); e && e->is_int()) extras.epoch = e->as_int();
      } else {
        model = io::state_dict_tensors(extras.object, in);
      }
      break;
    }
    case io::CheckpointFormat::Safetensors: {
      model = io::load_safetensors(in, &extras.metadata);
      if (const auto it = extras.metadata.find("config"); it != extras.metadata.end()) {
        const auto j = nlohmann::json::parse(it->second, nullptr, /*allow_exceptions=*/false);
        if (j.is_object()) {
          extras.config = pk::from_json(j);
          extras.metadata.erase(it);
        }
      }
      if (const auto it = extras.metadata.find("epoch"); it != extras.metadata.end()) {
        try {
          std::size_t used = 0;
          const long long e = std::stoll(it->second, &used);
          if (used == it->second.size()) {
            extras.epoch = e;
            extras.metadata.erase(it);
          }
        } catch (const std::exception&) {
        }
      }
      break;
    }
    case io::CheckpointFormat::Unknown: io::load_model_tensors(in);  // throws the precise reason
  }

  if (to == Format::Pth) {
    if (!model_only && !extras.object.is_none()) {
      io::save_pth_object(out, extras.object);  // exact copy of the structure
    } else {
      io::PthCheckpoint ckpt;
      ckpt.model = std::move(model);
      if (!model_only) {
        ckpt.config = extras.config;
        ckpt.epoch = extras.epoch;
      }
      io::save_pth(out, ckpt);
      return ckpt.model.size();
    }
  } else {
    std::map<std::string, std::string> metadata;
    if (!model_only) {
      metadata = extras.metadata;
      if (!extras.config.is_none()) metadata["config"] = pk::to_json(extras.config).dump();
      if (extras.epoch) metadata["epoch"] = std::to_string(*extras.epoch);
      if (const auto* opt = extras.object.get("optimizer"); opt && !opt->is_none())
        std::cerr << "note: the optimizer state is not written (safetensors holds tensors only)\n";
    }
    io::save_safetensors(out, model, metadata);
  }
  return model.size();
}

// --blas-info: the matrix kernels this tool runs with (after its re-execution), for users and for
// scripts/test.sh, which runs the tests with the same OPENBLAS_CORETYPE.
[[noreturn]] void print_blas_info() {
  const auto k = blip::blas_kernels();
  const char* guard = std::getenv(blip::kBlasReexecGuardVar);
  std::string coretype = k.env_value.empty() ? "OPENBLAS_CORETYPE unset" : "OPENBLAS_CORETYPE=" + k.env_value;
  if (guard != nullptr && !k.env_value.empty() && k.env_value == guard) coretype += ", set by the tool's re-execution";
  std::printf("openblas core: %s (%s)\ncpu supports: %s\nopenblas config: %s\n",
              k.core.empty() ? "(none)" : k.core.c_str(), coretype.c_str(),
              k.cpu_best.empty() ? "(none)" : k.cpu_best.c_str(), k.config.empty() ? "(none)" : k.config.c_str());
  for (const char* name : {"OMP_WAIT_POLICY", "OPENBLAS_THREAD_TIMEOUT"}) {
    const char* value = std::getenv(name);
    std::printf("%s: %s\n", name, value ? value : "(unset)");
  }
  if (const auto warning = blip::blas_kernel_warning(k); !warning.empty()) std::printf("warning: %s\n", warning.c_str());
  std::fflush(stdout);
  std::exit(0);
}

}  // namespace

int main(int argc, char** argv) {
  blip::reexec_with_best_blas_kernels(argc, argv);  // first: OpenBLAS reads OPENBLAS_CORETYPE only at load
  CLI::App app{"Convert BLIP checkpoints between .pth (torch.save) and .safetensors"};
  std::string in, out;
  bool model_only = false;
  app.add_option("IN", in, "input checkpoint (.pth or .safetensors, recognised by content)")
      ->required()
      ->check(blip::cli::non_empty_path());
  app.add_option("OUT", out, "output checkpoint; the format follows the extension")
      ->required()
      ->check(blip::cli::non_empty_path());
  app.add_flag("--model-only", model_only, "write only the model tensors (no optimizer, config or epoch)");
  app.add_flag_callback("--blas-info", print_blas_info, "print the OpenBLAS kernels in use and exit");
  if (const int code = blip::cli::parse(app, argc, argv, "blip_convert"); code >= 0) return code;
  try {
    const std::size_t n = convert(in, out, model_only);
    std::cout << n << " tensors written to " << out << "\n";
    return 0;
  } catch (const blip::Error& e) {
    std::cerr << "blip_convert: " << e.what() << "\n";
  } catch (const std::bad_alloc&) {
    std::cerr << "blip_convert: " << in << ": out of memory\n";
  } catch (const c10::Error& e) {
    // A malformed file can make torch throw: one line, without the C++ backtrace.
    std::string msg = e.what_without_backtrace();
    msg = msg.substr(0, msg.find('\n'));
    std::cerr << "blip_convert: " << in << ": " << msg << "\n";
  } catch (const std::exception& e) {
    std::cerr << "blip_convert: " << in << ": " << e.what() << "\n";
  }
  return 1;  // bad input (README): whatever the reader could not take
}
