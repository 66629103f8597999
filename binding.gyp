# SPDX-License-Identifier: Apache-2.0
# node-gyp build of the same sources as CMakeLists.txt, with the LibTorch found by scripts/libtorch.js.
# `npm run build:gyp` builds it in build-gyp/ so that it leaves cmake-js's build/ alone; `npx node-gyp rebuild`
# builds it in build/ like any addon.
{
  'targets': [{
    'target_name': 'san_node',
    # Every cpp/*.cc, as CMakeLists.txt globs them.
    'sources': [
      '<!@(node -p "require(\'fs\').readdirSync(\'cpp\').filter(f => f.endsWith(\'.cc\')).map(f => \'cpp/\' + f).join(\' \')")',
    ],
    'include_dirs': [
      '<!(node -p "require(\'node-addon-api\').include_dir")',
      '<!@(node scripts/libtorch.js includeDirs)',
    ],
    # Node's common.gypi sets the new libstdc++ ABI; the addon must use LibTorch's own, set below.
    'defines!': ['_GLIBCXX_USE_CXX11_ABI=1'],
    'defines': [
      # As in CMakeLists.txt.
      'NAPI_VERSION=8',
      'NODE_ADDON_API_CPP_EXCEPTIONS',
      'NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS',
      'NODE_ADDON_API_DISABLE_DEPRECATED',
      '_GLIBCXX_USE_CXX11_ABI=<!(node scripts/libtorch.js cxx11Abi)',
    ],
    # node-gyp's defaults turn off exceptions and RTTI; LibTorch reports errors with both.
    'cflags!': ['-fno-exceptions'],
    'cflags_cc!': ['-fno-exceptions', '-fno-rtti', '-std=gnu++17'],
    'cflags_cc': ['-std=c++17', '-fexceptions', '-frtti', '-fvisibility=hidden', '-Wno-unused-parameter'],
    # --no-as-needed keeps libtorch_cuda, which nothing calls directly but which registers the CUDA kernels.
    'ldflags': [
      '-Wl,--no-as-needed',
      '-L<!(node scripts/libtorch.js libDir)',
      '-Wl,-rpath,<!(node scripts/libtorch.js libDir)',
    ],
    'libraries': ['<!@(node scripts/libtorch.js libraries)'],
    'conditions': [
      ['"<!(node scripts/libtorch.js cuda)" == "true"', {'defines': ['SAN_WITH_CUDA=1']}],
    ],
  }],
}
