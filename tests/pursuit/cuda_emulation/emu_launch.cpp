// Shared library that runs the kernels of mp_gram.cu on the CPU (see cuda_emu.h).
//
// Build (the tests do it once per session):
//   g++ -std=c++20 -O1 -ffp-contract=off -pthread -shared -fPIC
//       -include cuda_emu.h -I <skmpsae/_pursuit/kernels> emu_launch.cpp -o libmpemu.so
//
// emu_launch takes its arguments the way cuLaunchKernel (and so CuPy's
// RawKernel) does: params[i] points to the value of the kernel's i-th argument.
#include <cstring>
#include <type_traits>
#include <utility>

#include "mp_gram.cu"

namespace {

template <typename... Params, std::size_t... I>
void launch_params(void (*kernel)(Params...), unsigned grid, unsigned block, void** params,
                   std::index_sequence<I...>) {
    cuda_emu::launch(kernel, dim3{grid, 1, 1}, dim3{block, 1, 1},
                     *static_cast<std::remove_cv_t<Params>*>(params[I])...);
}

template <typename... Params>
void launch_params(void (*kernel)(Params...), unsigned grid, unsigned block, void** params) {
    launch_params(kernel, grid, block, params, std::index_sequence_for<Params...>{});
}

}  // namespace

// 0 on success, -1 for an unknown kernel name.
extern "C" int emu_launch(const char* name, unsigned grid, unsigned block, void** params) {
    if (std::strcmp(name, "mp_gram_f32") == 0) {
        launch_params(mp_gram_f32, grid, block, params);
    } else if (std::strcmp(name, "mp_gram_f64") == 0) {
        launch_params(mp_gram_f64, grid, block, params);
    } else {
        return -1;
    }
    return 0;
}
