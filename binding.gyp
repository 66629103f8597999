# SPDX-License-Identifier: Apache-2.0
# The addon's one build, run by node-gyp (which npm ships): `npm install` and `npm rebuild san-node` run it through
# scripts/install.js when no prebuilt binary fits, scripts/setup.sh runs it for the tests. The LibTorch it compiles
# and links against comes from scripts/libtorch.js (LIBTORCH_DIR, Torch_DIR or Debian's libtorch-dev).
{
  'variables': {
    'libtorch_cuda': '<!(node scripts/libtorch.js cuda)',
    'cuda_include_dirs': '<!(node scripts/libtorch.js cudaIncludeDirs)',
  },
  'targets': [{
    'target_name': 'san_node',
    # Every cpp/*.cc: a new source file needs no change here.
    'sources': [
      '<!@(node -p "require(\'fs\').readdirSync(\'cpp\').filter(f => f.endsWith(\'.cc\')).sort().map(f => \'cpp/\' + f).join(\' \')")',
    ],
    'include_dirs': [
      '<!(node -p "require(\'node-addon-api\').include_dir")',
      '<!@(node scripts/libtorch.js includeDirs)',
    ],
    # Node's common.gypi sets the new libstdc++ ABI; the addon must use LibTorch's own, set below.
    'defines!': ['_GLIBCXX_USE_CXX11_ABI=1'],
    'defines': [
      # NAPI_VERSION matches package.json "binary.napi_versions". C++ exceptions carry LibTorch's errors to JS; those
      # that cannot be thrown any more (a worker_thread being terminated) are dropped instead of aborting the process.
      'NAPI_VERSION=8',
      'NODE_ADDON_API_CPP_EXCEPTIONS',
      'NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS',
      'NODE_ADDON_API_DISABLE_DEPRECATED',
      '_GLIBCXX_USE_CXX11_ABI=<!(node scripts/libtorch.js cxx11Abi)',
      # Reported by versions().builder, so that a test can tell which build the loader picked.
      'SAN_BUILDER="node-gyp"',
    ],
    # node-gyp's defaults turn off exceptions and RTTI; LibTorch reports errors with both.
    'cflags!': ['-fno-exceptions'],
    'cflags_cc!': ['-fno-exceptions', '-fno-rtti', '-std=gnu++17'],
    'cflags_cc': ['-std=c++17', '-fexceptions', '-frtti', '-fvisibility=hidden', '-Wall', '-Wextra',
                  '-Wno-unused-parameter'],
    # The rpath finds LibTorch where it was found at build time, wherever that is (an unpacked zip has no system
    # path).
    'ldflags': [
      '-L<!(node scripts/libtorch.js libDir)',
      '-Wl,-rpath,<!(node scripts/libtorch.js libDir)',
    ],
    'libraries': ['<!@(node scripts/libtorch.js libraries)'],
    'conditions': [
      ['libtorch_cuda == "true"', {
        'defines': ['SAN_WITH_CUDA=1'],
        # Nothing in the addon calls into libtorch_cuda, so a linker defaulting to --as-needed (Ubuntu's) would drop
        # it, and with it the registration of every CUDA kernel: LibTorch would then report no CUDA at run time.
        'ldflags': ['-Wl,--no-as-needed'],
      }],
      # Reading LibTorch's CUDA caching allocator needs the CUDA runtime's headers; without them the addon builds
      # and runs, and cudaMemory() says why it has no figures.
      ['libtorch_cuda == "true" and cuda_include_dirs != ""', {
        'defines': ['SAN_CUDA_ALLOCATOR_STATS=1'],
        'include_dirs': ['<(cuda_include_dirs)'],
      }],
    ],
  }],
}
