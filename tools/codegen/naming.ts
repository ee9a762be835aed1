// Names shared by the generator and the tests that find generated modules.

/** "DescribeLogDirs" → "describe-log-dirs" (the generated file name of an API). */
export function kebab(name: string): string {
  return name
    .replace(/([a-z0-9])([A-Z])/g, "$1-$2")
    .replace(/([A-Z])([A-Z][a-z])/g, "$1-$2")
    .toLowerCase();
}
