/** The browser's `node:path`: POSIX paths over the mounted files of ./fs.ts. */
export const sep = "/";

export function normalize(p: string): string {
  const abs = p.startsWith("/");
  const out: string[] = [];
  for (const part of p.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (out.length > 0 && out[out.length - 1] !== "..") out.pop();
      else if (!abs) out.push("..");
    } else out.push(part);
  }
  const s = (abs ? "/" : "") + out.join("/");
  return s === "" ? "." : s;
}

export const join = (...parts: string[]): string => normalize(parts.filter((p) => p !== "").join("/"));
export const isAbsolute = (p: string): boolean => p.startsWith("/");
export const resolve = (...parts: string[]): string => {
  let p = "";
  for (const part of parts) p = isAbsolute(part) ? part : `${p}/${part}`;
  return normalize(isAbsolute(p) ? p : `/${p}`);
};
export function dirname(p: string): string {
  const n = normalize(p);
  const i = n.lastIndexOf("/");
  return i < 0 ? "." : i === 0 ? "/" : n.slice(0, i);
}
export function basename(p: string, ext?: string): string {
  const b = normalize(p).split("/").pop() ?? "";
  return ext && b.endsWith(ext) ? b.slice(0, -ext.length) : b;
}
export function extname(p: string): string {
  const b = basename(p);
  const i = b.lastIndexOf(".");
  return i <= 0 ? "" : b.slice(i);
}

const path = { sep, normalize, join, isAbsolute, resolve, dirname, basename, extname, posix: {} as object };
path.posix = path;
export default path;
