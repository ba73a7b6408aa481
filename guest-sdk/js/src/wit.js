// The world's imports, in one place. Not a stable API: use the modules of
// this package. These are ES modules that componentize-js defines from the
// WIT; calls to them are only valid inside `run` (not at module top level,
// which runs once when the component is built).

export * as kube from 'stepbox:step/kube@0.1.0';
export * as helm from 'stepbox:step/helm@0.1.0';
export * as kustomize from 'stepbox:step/kustomize@0.1.0';
export * as run from 'stepbox:step/run@0.1.0';
export * as preopens from 'wasi:filesystem/preopens@0.2.12';
