//! Crafted components: step-world components whose core module does what no
//! Rust guest does (grow tables, spread memory over many memories), built
//! here with wasm-encoder and wit-component.

use wasm_encoder::{
    CodeSection, ConstExpr, ExportKind, ExportSection, Function, FunctionSection, GlobalSection,
    GlobalType, HeapType, Instruction, MemorySection, MemoryType, Module, RefType, TableSection,
    TableType, TypeSection, ValType,
};

use super::{Case, assert_limit, runtime};

/// What the crafted `run` does.
enum Attack {
    /// `table.grow` by 100,000 null elements, forever.
    GrowTable,
    /// Grow each of `count` extra memories by 16 MiB, then return ok.
    ManyMemories { count: u32 },
}

fn memory(minimum: u64) -> MemoryType {
    MemoryType {
        minimum,
        maximum: None,
        memory64: false,
        shared: false,
        page_size_log2: None,
    }
}

/// A core module of the step world: `memory`, a bump `cabi_realloc`, and
/// `run(ctx) -> result<_, string>` (seven flat parameters, the result
/// through memory: offset 1024 holds zeros, `ok`).
fn core_module(attack: &Attack) -> Vec<u8> {
    let mut module = Module::new();
    let mut types = TypeSection::new();
    types.ty().function([ValType::I32; 4], [ValType::I32]);
    types.ty().function([ValType::I32; 7], [ValType::I32]);
    module.section(&types);
    let mut funcs = FunctionSection::new();
    funcs.function(0);
    funcs.function(1);
    module.section(&funcs);
    if let Attack::GrowTable = attack {
        let mut tables = TableSection::new();
        tables.table(TableType {
            element_type: RefType::FUNCREF,
            table64: false,
            minimum: 1,
            maximum: None,
            shared: false,
        });
        module.section(&tables);
    }
    let mut memories = MemorySection::new();
    memories.memory(memory(1));
    if let Attack::ManyMemories { count } = attack {
        for _ in 0..*count {
            memories.memory(memory(0));
        }
    }
    module.section(&memories);
    let mut globals = GlobalSection::new();
    globals.global(
        GlobalType {
            val_type: ValType::I32,
            mutable: true,
            shared: false,
        },
        &ConstExpr::i32_const(4096),
    );
    module.section(&globals);
    let mut exports = ExportSection::new();
    exports.export("memory", ExportKind::Memory, 0);
    exports.export("cabi_realloc", ExportKind::Func, 0);
    exports.export("run", ExportKind::Func, 1);
    module.section(&exports);

    let mut code = CodeSection::new();
    // cabi_realloc(old, old_size, align, new_size): bump allocation.
    let mut realloc = Function::new([]);
    for i in [
        Instruction::GlobalGet(0),
        Instruction::GlobalGet(0),
        Instruction::LocalGet(3),
        Instruction::I32Add,
        Instruction::I32Const(7),
        Instruction::I32Add,
        Instruction::I32Const(-8),
        Instruction::I32And,
        Instruction::GlobalSet(0),
        Instruction::End,
    ] {
        realloc.instruction(&i);
    }
    code.function(&realloc);
    let mut run = Function::new([]);
    match attack {
        Attack::GrowTable => {
            for i in [
                Instruction::Loop(wasm_encoder::BlockType::Empty),
                Instruction::RefNull(HeapType::FUNC),
                Instruction::I32Const(100_000),
                Instruction::TableGrow(0),
                Instruction::Drop,
                Instruction::Br(0),
                Instruction::End,
            ] {
                run.instruction(&i);
            }
        }
        Attack::ManyMemories { count } => {
            for m in 1..=*count {
                run.instruction(&Instruction::I32Const(256))
                    .instruction(&Instruction::MemoryGrow(m))
                    .instruction(&Instruction::Drop);
            }
        }
    }
    run.instruction(&Instruction::I32Const(1024))
        .instruction(&Instruction::End);
    code.function(&run);
    module.section(&code);
    module.finish()
}

/// The component of `attack`, written to a temp file.
fn component(attack: &Attack) -> (tempfile::TempDir, std::path::PathBuf) {
    let mut resolve = wit_parser::Resolve::default();
    let (pkg, _) = resolve
        .push_dir(stepbox_tests::repo_root().join("wit"))
        .expect("wit/");
    let world = resolve
        .select_world(&[pkg], Some("step"))
        .expect("world step");
    let mut module = core_module(attack);
    wit_component::embed_component_metadata(
        &mut module,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
        false,
    )
    .expect("embed");
    let bytes = wit_component::ComponentEncoder::default()
        .module(&module)
        .expect("module")
        .validate(true)
        .encode()
        .expect("encode");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crafted.wasm");
    std::fs::write(&path, bytes).unwrap();
    (dir, path)
}

async fn run(attack: Attack, memory: u64) -> stepbox::report::RunReport {
    let (_dir, path) = component(&attack);
    let step = runtime().load_file(&path).expect("a crafted step loads");
    Case::from_step(step).memory(memory).run().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_res_table_growth() {
    let r = run(Attack::GrowTable, 64 << 20).await;
    assert_limit(
        &r,
        "table-elements",
        &["table limit exceeded: the step grew its tables past 1000000 elements"],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_res_memory_spread_over_many_memories() {
    // Eight memories of 16 MiB each: each is under the 64 MiB limit, all of
    // them together are not.
    let r = run(Attack::ManyMemories { count: 8 }, 64 << 20).await;
    assert_limit(
        &r,
        "memory",
        &["memory limit exceeded", "the limit is 64 MiB"],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_res_too_many_memories() {
    // More memories than a run may create: it cannot even start.
    let r = run(Attack::ManyMemories { count: 20 }, 64 << 20).await;
    super::assert_status(
        &r,
        stepbox::report::Status::Failed,
        &["the step could not be started", "memory count"],
    );
}
