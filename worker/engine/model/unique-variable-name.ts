let variableCounter = 0;

/** tfjs variable names are process-global: make each one unique, keep the readable part. */
export function uniqueVariableName(name: string): string {
  variableCounter += 1;
  return `v${variableCounter}/${name}`;
}
