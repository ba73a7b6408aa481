//! The `stepbox` command; see [`stepbox::cli`].

fn main() -> std::process::ExitCode {
    stepbox::cli::main()
}
