export type EntryType = 'file' | 'directory' | 'symlink' | 'other';

export interface DirEntry {
  name: string;
  type: EntryType;
}

/** The bytes of a file under /packages or /workspace. */
export declare function readBytes(path: string): Uint8Array;
/** The text of a UTF-8 file. */
export declare function readText(path: string): string;
/** Creates or replaces a file (under /workspace). */
export declare function writeBytes(path: string, bytes: Uint8Array): void;
export declare function writeText(path: string, text: string): void;
/** The entries of a directory, sorted by name. */
export declare function readDir(path: string): DirEntry[];
export declare function stat(path: string): { type: EntryType; size: number };
export declare function exists(path: string): boolean;
export declare function isDir(path: string): boolean;
export declare function mkdir(path: string, options?: { recursive?: boolean }): void;
