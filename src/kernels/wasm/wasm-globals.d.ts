/**
 * The parts of the WebAssembly JS API used here. Node has them at run time, but this project compiles
 * without the DOM lib, which is where TypeScript declares them. A declaration file (included by tsconfig.json,
 * imported by nothing), so that the browser explorer's build (web/, with the DOM lib) never sees it.
 */
declare global {
  namespace WebAssembly {
    class Module {
      constructor(bytes: ArrayBufferView | ArrayBuffer);
    }
    interface MemoryDescriptor {
      initial: number;
      maximum?: number;
      shared?: boolean;
    }
    class Memory {
      constructor(descriptor: MemoryDescriptor);
      readonly buffer: ArrayBuffer | SharedArrayBuffer;
      grow(delta: number): number;
    }
    class Instance {
      constructor(module: Module, imports?: Record<string, Record<string, unknown>>);
      readonly exports: Record<string, unknown>;
    }
  }
}
export {};
