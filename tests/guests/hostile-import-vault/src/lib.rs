//! A step of the right shape that also imports `acme:vault/secrets`, which
//! no stepbox host offers: loading it must fail with a message naming the
//! import, never link it to something else.

wit_bindgen::generate!({
    path: "../../../wit",
    inline: r#"
        package acme:vault;

        interface secrets {
            get: func(name: string) -> option<string>;
        }

        world vault-step {
            include stepbox:step/step@0.1.0;
            import secrets;
        }
    "#,
    world: "acme:vault/vault-step",
    generate_all,
});

struct VaultStep;

impl Guest for VaultStep {
    fn run(_ctx: stepbox::step::types::RunContext) -> Result<(), String> {
        match acme::vault::secrets::get("root-password") {
            Some(_) => Err("got a vault secret".into()),
            None => Ok(()),
        }
    }
}

export!(VaultStep);
