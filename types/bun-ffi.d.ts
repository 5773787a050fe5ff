// Minimal typings for the parts of Bun's FFI (`bun:ffi`) that petrel-netlink uses
// (agent/routing/netlink/main.ts, a Bun executable; Node never loads it).
declare module 'bun:ffi' {
  export const FFIType: {
    readonly i32: number;
    readonly u32: number;
    readonly i64: number;
    readonly u64: number;
    readonly ptr: number;
    readonly cstring: number;
  };
  export type Pointer = number & { readonly __pointer: unique symbol };
  export function ptr(view: ArrayBufferView): Pointer;
  export const read: { i32(p: Pointer, offset?: number): number };
  export function dlopen<T extends Record<string, { args: readonly number[]; returns: number }>>(
    path: string,
    symbols: T,
  ): { symbols: { [K in keyof T]: (...args: unknown[]) => number | bigint | Pointer }; close(): void };
}
