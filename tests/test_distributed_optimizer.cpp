// ctest-mpi-ranks: 2
// ctest-timeout: 120
// DistributedOptimizer's gradient buckets under plain DP (CPU backend, the MPI communicator, two
// ranks): the buckets tile the padded gradient buffer in whole parameters from its end back, and
// each is reduced as soon as the model says its gradients are final, not before and not twice: after
// the last block's callback exactly the buckets inside that block hold the DP mean and the others
// still hold this rank's own values; after reduce_gradients every element holds the mean.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "common/mpi_environment.h"
#include "common/mpi_training.h"
#include "common/training_setup.h"
#include "train/distributed_optimizer.h"

T6_MPI_TEST_ENVIRONMENT();

using namespace t6;
using namespace t6::testing;

namespace {

// Forwards to another communicator and notes where each started all-reduce begins in `base`.
class StartRecorder final : public Communicator {
 public:
  StartRecorder(Communicator& inner, const float* base) : inner_(inner), base_(base) {}
  int rank() const override { return inner_.rank(); }
  int size() const override { return inner_.size(); }
  void all_reduce(Tensor buffer, ReduceOp op) override { inner_.all_reduce(buffer, op); }
  void reduce_scatter(const Tensor& input, Tensor output, ReduceOp op) override { inner_.reduce_scatter(input, output, op); }
  void all_gather(const Tensor& input, Tensor output) override { inner_.all_gather(input, output); }
  void broadcast(Tensor buffer, int root) override { inner_.broadcast(buffer, root); }
  void barrier() override { inner_.barrier(); }
  void start_all_reduce(Tensor buffer, ReduceOp op) override {
    started.push_back({buffer.data<float>() - base_, buffer.data<float>() - base_ + buffer.numel()});
    inner_.start_all_reduce(buffer, op);
  }
  std::unique_ptr<Communicator> split(int color, int key) override { return inner_.split(color, key); }

  std::vector<Range> started;

 private:
  Communicator& inner_;
  const float* base_;
};

// Distinct on every rank and element, with a mean that is exact in fp32.
float value_of(int rank, int64_t element) { return float(element % 97) + 0.25f * float(rank + 1); }
float mean_of(int64_t element) { return float(element % 97) + 0.25f * 1.5f; }

class BucketedReduction : public ::testing::Test {
 protected:
  BucketedReduction()
      : world_(communicator_of(MPI_COMM_WORLD)),
        weights_(tiny_run_config(ModelKind::T6, "").model, 0, 1),
        recorder_(*world_, weights_.padded_grads().data<float>()),
        // Small enough that each of the two blocks spans about three buckets.
        optimizer_(weights_, AdamWSettings{}, {nullptr, &recorder_}, {nullptr, world_.get()}, false,
                   (weights_.table().local_numel() - weights_.table().params()[0].numel()) / 6) {
    float* grads = weights_.padded_grads().data<float>();
    for (int64_t i = 0; i < weights_.padded_numel(); ++i) grads[i] = value_of(world_->rank(), i);
  }
  std::unique_ptr<Communicator> world_;
  ModelWeights weights_;
  StartRecorder recorder_;
  DistributedOptimizer optimizer_;
};

TEST_F(BucketedReduction, BucketsTileTheBufferInWholeParametersFromItsEnd) {
  const std::vector<DistributedOptimizer::Bucket>& buckets = optimizer_.buckets();
  ASSERT_GE(buckets.size(), 4u);
  int64_t end = weights_.padded_numel();
  for (const DistributedOptimizer::Bucket& bucket : buckets) {
    EXPECT_EQ(bucket.elements.end, end);
    EXPECT_LT(bucket.elements.begin, bucket.elements.end);
    EXPECT_EQ(bucket.elements.begin, weights_.table().params()[size_t(bucket.first_param)].flat_offset);
    end = bucket.elements.begin;
  }
  EXPECT_EQ(end, 0);
}

TEST_F(BucketedReduction, EachBucketIsReducedOnceWhenItsGradientsAreFinal) {
  const int64_t last_block = weights_.table().first_param_of_layer(weights_.config().n_layer - 1);
  const int64_t block_begin = weights_.table().params()[size_t(last_block)].flat_offset;
  optimizer_.gradients_final_from(last_block);
  EXPECT_TRUE(recorder_.started.empty()) << "reduced before the step's last backward began";

  optimizer_.begin_overlapped_reduction();
  optimizer_.gradients_final_from(last_block);
  ASSERT_FALSE(recorder_.started.empty());
  for (const Range& started : recorder_.started) EXPECT_GE(started.begin, block_begin);
  const float* grads = weights_.padded_grads().data<float>();
  const int64_t reduced_from = recorder_.started.back().begin;
  for (int64_t i = 0; i < weights_.padded_numel(); ++i) {
    const float expected = i >= reduced_from ? mean_of(i) : value_of(world_->rank(), i);
    ASSERT_EQ(grads[i], expected) << "element " << i << " (reduced from " << reduced_from << ")";
  }
  // Every bucket that lies within the last block, and no other.
  int64_t expected_from = weights_.padded_numel();
  for (const DistributedOptimizer::Bucket& bucket : optimizer_.buckets())
    if (bucket.elements.begin >= block_begin) expected_from = std::min(expected_from, bucket.elements.begin);
  EXPECT_EQ(reduced_from, expected_from);
  EXPECT_GT(reduced_from, 0);

  const size_t started_by_last_block = recorder_.started.size();
  optimizer_.gradients_final_from(last_block);  // again: nothing more to start
  EXPECT_EQ(recorder_.started.size(), started_by_last_block);
  double statistics[2] = {0, 0};  // the squared norm and the non-finite count of this rank's share
  optimizer_.reduce_gradients(Tensor(statistics, {2}, DType::F64));
  const double square_sum = statistics[0];
  EXPECT_EQ(statistics[1], 0.0);
  EXPECT_EQ(recorder_.started.size(), optimizer_.buckets().size());
  double expected_square_sum = 0;
  for (int64_t i = 0; i < weights_.padded_numel(); ++i) {
    ASSERT_EQ(grads[i], mean_of(i)) << "element " << i;
    if (i < weights_.table().local_numel()) expected_square_sum += double(mean_of(i)) * double(mean_of(i));
  }
  EXPECT_NEAR(square_sum, expected_square_sum, 1e-9 * expected_square_sum);
}

}  // namespace
