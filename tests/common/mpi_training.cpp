#include "common/mpi_training.h"

#include <fstream>
#include <nlohmann/json.hpp>

#include "common/mpi_environment.h"
#include "common/test_paths.h"
#include "common/training_setup.h"
#include "parallel/mpi_communicator.h"

namespace t6::testing {

namespace {
constexpr int kMaxPath = 512;
}  // namespace

std::string broadcast_from_rank0(std::string text) {
  text.resize(kMaxPath, '\0');
  MPI_Bcast(text.data(), kMaxPath, MPI_CHAR, 0, MPI_COMM_WORLD);
  return text.c_str();
}

const std::string& shared_corpus() {
  static const std::string path = broadcast_from_rank0(
      world_rank() == 0 ? write_shakespeare_corpus((scratch_dir("corpus") / "shakespeare").string()) : "");
  return path;
}

std::string shared_run_dir(const std::string& label) {
  return broadcast_from_rank0(world_rank() == 0 ? scratch_dir(label).string() : "");
}

std::unique_ptr<Communicator> communicator_of(MPI_Comm comm) {
  MPI_Comm copy;
  MPI_Comm_dup(comm, &copy);
  return std::make_unique<MpiCommunicator>(copy);
}

StepRecords read_step_records(const std::string& run_dir) {
  StepRecords records;
  std::ifstream file(run_dir + "/metrics.jsonl");
  std::string line;
  while (std::getline(file, line)) {
    const auto json = nlohmann::json::parse(line);
    if (!json.contains("loss")) continue;
    records.steps.push_back(json["step"]);
    records.losses.push_back(json["loss"]);
    records.grad_norms.push_back(json["grad_norm"]);
  }
  return records;
}

}  // namespace t6::testing
