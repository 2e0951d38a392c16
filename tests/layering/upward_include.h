#pragma once
// A file that breaks the layering on purpose: were it in src/core/, it would include a header
// of src/io/, a layer above core. tests/CMakeLists.txt checks that cmake/check_layer.cmake
// refuses it, naming the file and the header.
#include "core/error.h"
#include "io/checkpoint.h"
