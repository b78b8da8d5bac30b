// Types of wick.js, the entry point of the Wick bundle. The classes and the plain-object types
// are those wasm-bindgen generates from main-thread/src (main/wick_main.d.ts).
export { Wick, Pipeline, pipeline } from './main/wick_main.js';
export type {
  Backend,
  Capabilities,
  DigitsResult,
  DType,
  ErrorCode,
  ExternalFile,
  ImageLike,
  LoadOptions,
  PipelineOptions,
  Progress,
  ReadyInfo,
  RequestOptions,
  RunOptions,
  RunResult,
  RunStats,
  Task,
  Tensor,
  TensorData,
  ValueInfo,
  WickError,
} from './main/wick_main.js';
