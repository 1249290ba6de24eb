/** One `option KEY VALUE...` line as written (values are raw words; conversion happens in the check). */
export interface VolfileOption {
  key: string;
  values: string[];
  line: number;
}

/** One `volume ... end-volume` block as written. */
export interface VolfileVolume {
  name: string;
  /** Line of `volume NAME`. */
  line: number;
  /** As written; undefined when the block has no `type` line (a check error, not a syntax error). */
  type: string | undefined;
  typeLine: number | undefined;
  options: VolfileOption[];
  subvolumes: string[];
  subvolumesLine: number | undefined;
  /** Line of `end-volume`. */
  endLine: number;
}

/** A parsed volfile: syntax only, nothing resolved or validated yet. */
export interface Volfile {
  file: string;
  volumes: VolfileVolume[];
}

/** A volume after the check: type resolved to its canonical name, options converted, defaults applied. */
export interface CheckedVolume {
  name: string;
  type: string;
  line: number;
  options: Record<string, unknown>;
  subvolumes: string[];
  /** Line of each option written in the file (defaults have none): errors found later can point at it. */
  optionLines?: Record<string, number>;
}

/** A volfile that passed every check; `volumes` are in definition order, which is bottom-up. */
export interface CheckedVolfile {
  file: string;
  top: string;
  volumes: CheckedVolume[];
}
