// Every tensor-level op, for code that uses many (layers, the trainer). One header per op family, each
// holding the op's parameters, its dispatch stubs and its tensor-level functions:
//   conv2d.h pooling.h linear.h gemm.h activations.h dropout.h softmax.h mse.h lrn.h batchnorm.h augment.h
//   optimizers.h fill.h metrics.h; context.h holds ops::Context.
// Every op checks shapes, dtypes and that all tensors are on the context's device, and throws a UsageError
// naming the op, the argument and the values; outputs are new tensors on that device from the caching
// allocator; the work goes to the implementation the stub picks for ctx.exec().
#pragma once
#include "layers/ops/activations.h"
#include "layers/ops/augment.h"
#include "layers/ops/batchnorm.h"
#include "layers/ops/context.h"
#include "layers/ops/conv2d.h"
#include "layers/ops/dropout.h"
#include "layers/ops/fill.h"
#include "layers/ops/gemm.h"
#include "layers/ops/linear.h"
#include "layers/ops/lrn.h"
#include "layers/ops/metrics.h"
#include "layers/ops/mse.h"
#include "layers/ops/optimizers.h"
#include "layers/ops/pooling.h"
#include "layers/ops/softmax.h"
