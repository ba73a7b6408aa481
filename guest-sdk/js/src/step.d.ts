/** What the host tells a step about the run it is part of. */
export interface Context {
  /** The Kubernetes namespace every kube and helm call is confined to. */
  readonly namespace: string;
  /** The step's name (from the component file name unless given). */
  readonly stepName: string;
  /** A unique id for this run. */
  readonly runId: string;
  /** True when nothing real is changed. */
  readonly dryRun: boolean;
}

/** The type of a step's `run` export. */
export type StepRun = (ctx: Context) => void | Promise<void>;

/** Used by the component's entry module; steps do not call it. */
export declare function runStep(
  witContext: Context,
  stepRun: StepRun,
): Promise<{ tag: 'ok'; val: undefined } | { tag: 'err'; val: string }>;
