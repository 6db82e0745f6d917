/** Browser counterparts of the small Node modules the model code touches: node:os, node:url, node:module. */

/** node:os */
export const availableParallelism = (): number => globalThis.navigator?.hardwareConcurrency ?? 1;

/** node:url: the path part of a URL (file: or, for bundled assets, http:). */
export const fileURLToPath = (u: string | URL): string => new URL(String(u)).pathname;

/**
 * Where `require.resolve` finds a package's file in the page: under /node_modules/<specifier>, a mount point
 * that the worker fills (the bundled Qwen3 tokenizer comes from the served demo checkpoint's copy).
 */
export const NODE_MODULES = "/node_modules";
export const createRequire = (): { resolve(id: string): string } => ({ resolve: (id: string) => `${NODE_MODULES}/${id}` });

export default { availableParallelism, fileURLToPath, createRequire };
