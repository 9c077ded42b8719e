// CUDA built-ins in plain C++20, so that a kernel's .cu source, unchanged, runs on the CPU.
//
// Force-included by g++ (-include cuda_emu.h); nvcc defines __CUDACC__ and skips it.
//
// Execution model. A launch runs its blocks one after another. Each block has
// blockDim.x real threads (std::thread); __syncthreads is a std::barrier over
// them, and each warp of 32 threads has its own barrier for the shuffles.
// Because only one block runs at a time, a __shared__ variable (a function
// static here) is exactly the running block's shared memory; every thread
// waits at a barrier when its block ends, so the next block starts after all
// threads of the previous one are done with it.
//
// Shuffles are collective: every lane of the warp must call them, with the full
// mask, the same number of times (a kernel that diverges here deadlocks in the
// emulation, as it would misbehave on a GPU). Each lane writes its value to the
// warp's exchange slots, waits at the warp barrier and reads its source lane's
// slot. Two sets of slots alternate: a set is rewritten two shuffles later, by
// which time every lane has passed the barrier after its read.
//
// Arithmetic intrinsics (__fmul_rn and friends) are the plain operators; compile
// with -ffp-contract=off so that the compiler does not fuse them, and on x86-64,
// where float and double arithmetic is SSE2 rounding to the operand type.
#ifndef SKMPSAE_CUDA_EMU_H
#define SKMPSAE_CUDA_EMU_H
#ifndef __CUDACC__

#include <barrier>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static
#define __launch_bounds__(...)

struct dim3 {
    unsigned x = 1, y = 1, z = 1;
};

inline thread_local dim3 threadIdx;
inline thread_local dim3 blockIdx;
inline thread_local dim3 blockDim;
inline thread_local dim3 gridDim;

namespace cuda_emu {

constexpr unsigned kWarp = 32;

struct Warp {
    std::barrier<> barrier{kWarp};
    alignas(8) unsigned char slots[2][kWarp][8];
};

struct Block {
    explicit Block(unsigned n_threads) : barrier(n_threads) {
        for (unsigned w = 0; w < n_threads / kWarp; ++w) warps.push_back(std::make_unique<Warp>());
    }
    std::barrier<> barrier;
    std::vector<std::unique_ptr<Warp>> warps;
};

inline Block* current_block = nullptr;  // the block that is running
inline thread_local unsigned shuffle_parity = 0;

[[noreturn]] inline void fail(const char* what) {
    std::fprintf(stderr, "cuda_emu: %s\n", what);
    std::abort();
}

template <typename T>
T exchange(unsigned mask, T value, unsigned src_lane) {
    static_assert(sizeof(T) <= 8, "shuffles move at most 8 bytes");
    if (mask != 0xffffffffu) fail("only full-warp shuffles are emulated");
    const unsigned lane = threadIdx.x % kWarp;
    Warp& warp = *current_block->warps[threadIdx.x / kWarp];
    unsigned char(&slots)[kWarp][8] = warp.slots[shuffle_parity];
    shuffle_parity ^= 1u;
    std::memcpy(slots[lane], &value, sizeof(T));
    warp.barrier.arrive_and_wait();
    T out;
    std::memcpy(&out, slots[src_lane % kWarp], sizeof(T));
    return out;
}

// Runs kernel(args...) over the grid; blocks and threads are one-dimensional.
template <typename... Params, typename... Args>
void launch(void (*kernel)(Params...), dim3 grid, dim3 block, Args... args) {
    static std::mutex one_launch_at_a_time;
    std::lock_guard<std::mutex> lock(one_launch_at_a_time);
    if (block.x == 0 || block.x % kWarp != 0 || block.x > 1024 || block.y != 1 || block.z != 1)
        fail("blockDim must be (32 * m, 1, 1) with 32 * m <= 1024");
    if (grid.y != 1 || grid.z != 1) fail("gridDim must be (n, 1, 1)");
    Block state(block.x);
    current_block = &state;
    std::vector<std::thread> threads;
    threads.reserve(block.x);
    for (unsigned t = 0; t < block.x; ++t) {
        threads.emplace_back([&, t] {
            threadIdx = dim3{t, 0, 0};
            blockDim = block;
            gridDim = grid;
            for (unsigned b = 0; b < grid.x; ++b) {
                blockIdx = dim3{b, 0, 0};
                shuffle_parity = 0;
                kernel(args...);
                state.barrier.arrive_and_wait();  // the block ends for all its threads
            }
        });
    }
    for (std::thread& thread : threads) thread.join();
    current_block = nullptr;
}

}  // namespace cuda_emu

inline void __syncthreads() { cuda_emu::current_block->barrier.arrive_and_wait(); }

template <typename T>
T __shfl_xor_sync(unsigned mask, T value, int lane_mask, int width = 32) {
    if (width != 32) cuda_emu::fail("only width 32 is emulated");
    return cuda_emu::exchange(mask, value, (threadIdx.x % 32) ^ unsigned(lane_mask));
}

template <typename T>
T __shfl_down_sync(unsigned mask, T value, unsigned delta, int width = 32) {
    if (width != 32) cuda_emu::fail("only width 32 is emulated");
    const unsigned lane = threadIdx.x % 32;
    return cuda_emu::exchange(mask, value, lane + delta < 32 ? lane + delta : lane);
}

inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dsub_rn(double a, double b) { return a - b; }

#endif  // __CUDACC__
#endif  // SKMPSAE_CUDA_EMU_H
