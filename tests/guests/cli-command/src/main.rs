//! A component of the `wasi:cli/command` world, not a stepbox step: the
//! host must refuse it with a message saying how to write a step.

fn main() {
    println!("hi");
}
