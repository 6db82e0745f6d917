/** Tensor shapes: the element count of a row-major shape (1 for a scalar's []). */
export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
