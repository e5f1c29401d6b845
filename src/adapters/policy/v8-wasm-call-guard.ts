/**
 * Works around a V8 11.3 defect (Node 20) that killed the server with a fatal error: "unreachable code" in
 * `Deoptimizer::DoComputeBuiltinContinuation` (SIGTRAP).
 *
 * TurboFan inlines a call from JavaScript into a WebAssembly export (`--turbo-inline-js-wasm-calls`, on by
 * default). When the optimized caller is lazily deoptimized while the wasm function runs (the wasm calls back
 * into JavaScript, which invalidates an assumption the caller was compiled with), the deoptimizer rebuilds the
 * call's result from the return register by its wasm type; V8 11.3 knows i32, i64, f32 and f64 there and hits
 * UNREACHABLE for a reference type. Every Cedar entry point (`@cedar-policy/cedar-wasm`, wasm-bindgen with
 * reference types) takes and returns `externref`, and the per-row decision of a large QIDO / C-FIND result calls
 * one thousands of times: after enough traffic to optimize the caller, one lazy deoptimization inside
 * `statefulIsAuthorized` ended the process. docs/dimse.md "Known issues" has the reproducer.
 *
 * The flag is read when TurboFan compiles, so turning it off before the first Cedar call is enough; the JS→wasm
 * call then goes through the regular export wrapper (nanoseconds, against the hundreds of microseconds of a
 * Cedar evaluation). Later V8 versions handle reference types there; the flag is harmless on them.
 */
import { setFlagsFromString } from 'node:v8';

setFlagsFromString('--no-turbo-inline-js-wasm-calls');
