//! A step that imports `stepbox:step/helm@0.1.0`, a capability of the step
//! contract this host does not implement yet: loading it must fail with a
//! message naming the import.

wit_bindgen::generate!({
    inline: r#"
        package stepbox:step@0.1.0;

        interface types {
            record run-context {
                namespace: string,
                step-name: string,
                run-id: string,
                dry-run: bool,
            }
        }

        interface helm {
            template: func(chart: string, values: string) -> result<string, string>;
        }

        world helm-step {
            import types;
            import helm;
            use types.{run-context};
            export run: func(ctx: run-context) -> result<_, string>;
        }
    "#,
    world: "helm-step",
});

struct HelmStep;

impl Guest for HelmStep {
    fn run(_ctx: RunContext) -> Result<(), String> {
        stepbox::step::helm::template("/packages/chart", "").map(drop)
    }
}

export!(HelmStep);
