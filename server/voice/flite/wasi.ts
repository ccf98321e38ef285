/**
 * A minimal in-memory WASI (preview1) for running a command-line WASM program once: argv in,
 * files it creates kept in memory, stdout dropped, stderr kept for error messages. Node's own
 * `node:wasi` crashes the process (segfault) after about 20 runs of Flite in one process;
 * this implements only the 13 calls Flite imports and has run it 400+ times
 * clean. No real file system is reachable: every path the program opens is a fresh memory file.
 */

const ERRNO_SUCCESS = 0;
const ERRNO_BADF = 8;
const FILETYPE_CHARACTER_DEVICE = 2;
const FILETYPE_DIRECTORY = 3;
const FILETYPE_REGULAR_FILE = 4;
const ALL_RIGHTS = 0xffff_ffff_ffff_ffffn;
/** fd 3 is the one preopened directory, ".", so relative paths resolve against it. */
const PREOPEN_FD = 3;
const WHENCE_SET = 0;
const WHENCE_CUR = 1;

class MemoryFile {
  data = new Uint8Array(64 * 1024);
  length = 0;
  position = 0;

  write(bytes: Uint8Array): void {
    const end = this.position + bytes.length;
    if (end > this.data.length) {
      const grown = new Uint8Array(Math.max(end, this.data.length * 2));
      grown.set(this.data.subarray(0, this.length));
      this.data = grown;
    }
    this.data.set(bytes, this.position);
    this.position = end;
    this.length = Math.max(this.length, end);
  }

  contents(): Uint8Array {
    return this.data.subarray(0, this.length);
  }
}

class ProcExit {
  constructor(readonly code: number) {}
}

export interface WasiRun {
  exitCode: number;
  /** Files the program created, by the path it opened them with. */
  files: Map<string, Uint8Array>;
  stderr: string;
}

/** Instantiates `module` and runs its `_start` with `args` (args[0] is the program name). */
export function runWasiCommand(module: WebAssembly.Module, args: string[]): WasiRun {
  const encoder = new TextEncoder();
  const argv = args.map((a) => encoder.encode(`${a}\0`));
  const open = new Map<number, MemoryFile>();
  const created = new Map<string, MemoryFile>();
  let nextFd = PREOPEN_FD + 1;
  let stderr = '';
  let memory: WebAssembly.Memory | undefined;
  const view = () => new DataView(memory!.buffer);
  const bytes = () => new Uint8Array(memory!.buffer);

  const imports = {
    args_sizes_get(countPtr: number, sizePtr: number): number {
      view().setUint32(countPtr, argv.length, true);
      view().setUint32(sizePtr, argv.reduce((n, a) => n + a.length, 0), true);
      return ERRNO_SUCCESS;
    },
    args_get(argvPtr: number, bufPtr: number): number {
      let at = bufPtr;
      argv.forEach((arg, i) => {
        view().setUint32(argvPtr + 4 * i, at, true);
        bytes().set(arg, at);
        at += arg.length;
      });
      return ERRNO_SUCCESS;
    },
    clock_time_get(_id: number, _precision: bigint, timePtr: number): number {
      view().setBigUint64(timePtr, process.hrtime.bigint(), true);
      return ERRNO_SUCCESS;
    },
    fd_close(fd: number): number {
      open.delete(fd);
      return ERRNO_SUCCESS;
    },
    fd_fdstat_get(fd: number, statPtr: number): number {
      const v = view();
      v.setUint8(statPtr, fd === PREOPEN_FD ? FILETYPE_DIRECTORY : fd < PREOPEN_FD ? FILETYPE_CHARACTER_DEVICE : FILETYPE_REGULAR_FILE);
      v.setUint16(statPtr + 2, 0, true);
      v.setBigUint64(statPtr + 8, ALL_RIGHTS, true);
      v.setBigUint64(statPtr + 16, ALL_RIGHTS, true);
      return ERRNO_SUCCESS;
    },
    fd_fdstat_set_flags: (): number => ERRNO_SUCCESS,
    fd_prestat_get(fd: number, prestatPtr: number): number {
      if (fd !== PREOPEN_FD) return ERRNO_BADF;
      view().setUint8(prestatPtr, 0);
      view().setUint32(prestatPtr + 4, 1, true);
      return ERRNO_SUCCESS;
    },
    fd_prestat_dir_name(_fd: number, pathPtr: number): number {
      bytes()[pathPtr] = 0x2e; // "."
      return ERRNO_SUCCESS;
    },
    fd_read(_fd: number, _iovs: number, _iovsLength: number, readPtr: number): number {
      view().setUint32(readPtr, 0, true);
      return ERRNO_SUCCESS;
    },
    fd_seek(fd: number, offset: bigint, whence: number, newOffsetPtr: number): number {
      const file = open.get(fd);
      if (!file) return ERRNO_BADF;
      const base = whence === WHENCE_SET ? 0 : whence === WHENCE_CUR ? file.position : file.length;
      file.position = base + Number(offset);
      view().setBigUint64(newOffsetPtr, BigInt(file.position), true);
      return ERRNO_SUCCESS;
    },
    fd_write(fd: number, iovs: number, iovsLength: number, writtenPtr: number): number {
      const v = view();
      const file = open.get(fd);
      let total = 0;
      for (let i = 0; i < iovsLength; i++) {
        const ptr = v.getUint32(iovs + 8 * i, true);
        const length = v.getUint32(iovs + 8 * i + 4, true);
        const chunk = bytes().subarray(ptr, ptr + length);
        if (file) file.write(chunk);
        else if (fd === 2) stderr += Buffer.from(chunk).toString('utf8');
        total += length;
      }
      v.setUint32(writtenPtr, total, true);
      return ERRNO_SUCCESS;
    },
    path_open(_dirFd: number, _dirFlags: number, pathPtr: number, pathLength: number, _oflags: number, _rights: bigint, _inherited: bigint, _fdFlags: number, fdPtr: number): number {
      const path = Buffer.from(bytes().subarray(pathPtr, pathPtr + pathLength)).toString('utf8');
      const file = new MemoryFile();
      const fd = nextFd++;
      open.set(fd, file);
      created.set(path, file);
      view().setUint32(fdPtr, fd, true);
      return ERRNO_SUCCESS;
    },
    proc_exit(code: number): never {
      throw new ProcExit(code);
    },
  };

  const instance = new WebAssembly.Instance(module, { wasi_snapshot_preview1: imports });
  memory = instance.exports['memory'] as WebAssembly.Memory;
  let exitCode = 0;
  try {
    (instance.exports['_start'] as () => void)();
  } catch (err) {
    if (!(err instanceof ProcExit)) throw err;
    exitCode = err.code;
  }
  return { exitCode, files: new Map([...created].map(([path, file]) => [path, file.contents()])), stderr };
}
