// Types of tools/source-hash.mjs (for the tests that import it).
export declare const SOURCE_HASH_TAG: string;
export declare function nativeSourceFiles(root: string): string[];
export declare function nativeSourceHash(root: string): string;
export declare function embeddedSourceHash(file: string): string | null;
