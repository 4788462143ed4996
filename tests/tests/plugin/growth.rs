//! The memory limit covers everything an instance can grow: every linear
//! memory and every table, summed over the whole instance. A Rust guest
//! cannot have a second memory or grow a table, so the plugin here is a
//! small core module written with `wasm-encoder` and made a component of
//! the `projection` world with `wit-component` (the same tool
//! `cargo component` and wit-bindgen use). Obeyed/violated pairs: under the
//! limit it works, over it the call faults naming the memory limit.

use hume::log::RecordedEvent;
use hume::plugin::{BatchError, Limit, Limits, Plugin, PluginError, Runtime, RuntimeConfig};
use wasm_encoder::{
    BlockType, CodeSection, ConstExpr, DataSection, ExportKind, ExportSection, Function,
    FunctionSection, GlobalSection, GlobalType, HeapType, Instruction as I, MemArg, MemorySection,
    MemoryType, Module, RefType, TableSection, TableType, TypeSection, ValType,
};

const MIB: usize = 1 << 20;
/// Pages of the main memory (the one the canonical ABI uses): 1 MiB.
const MAIN_PAGES: u64 = 16;

/// The core module: memory 0 (exported, 1 MiB), memory 1 (starts empty),
/// a funcref table (starts empty), and the world's exports. `handle-events`
/// looks at each event's kind: `memory` grows memory 1 by N pages, `table`
/// grows the table by N elements, N being the digits of the event's data;
/// a refused growth traps (`unreachable`), as an allocator aborts. Every
/// other export answers the least it may (state `{}`, no kinds).
fn core_module() -> Vec<u8> {
    let mut types = TypeSection::new();
    let sig = |types: &mut TypeSection, params: &[ValType], results: &[ValType]| {
        let index = types.len();
        types
            .ty()
            .function(params.iter().copied(), results.iter().copied());
        index
    };
    let t_ret = sig(&mut types, &[], &[ValType::I32]);
    let t_str = sig(&mut types, &[ValType::I32, ValType::I32], &[]);
    let t_restore = sig(&mut types, &[ValType::I32; 4], &[ValType::I32]);
    let t_list_ret = sig(&mut types, &[ValType::I32; 2], &[ValType::I32]);
    let t_offset = sig(&mut types, &[ValType::I64], &[]);
    let t_realloc = sig(&mut types, &[ValType::I32; 4], &[ValType::I32]);

    // (name, type, body); function indices follow this order.
    let static_result = |address: i32| {
        let mut f = Function::new([]);
        f.instruction(&I::I32Const(address)).instruction(&I::End);
        f
    };
    let nothing = || {
        let mut f = Function::new([]);
        f.instruction(&I::End);
        f
    };
    let with_params = |address: i32| {
        let mut f = Function::new([]);
        f.instruction(&I::I32Const(address)).instruction(&I::End);
        f
    };
    let exports: Vec<(&str, u32, Function)> = vec![
        ("describe", t_ret, static_result(INFO)),
        ("init-state", t_str, nothing()),
        ("restore", t_restore, with_params(ZEROS)),
        ("handle-events", t_list_ret, handle_events()),
        ("snapshot", t_ret, static_result(SNAPSHOT)),
        ("on-caught-up", t_offset, nothing()),
        ("query", t_list_ret, with_params(ZEROS)),
        ("cabi_realloc", t_realloc, realloc()),
    ];

    let mut functions = FunctionSection::new();
    let mut code = CodeSection::new();
    let mut export = ExportSection::new();
    for (index, (name, ty, body)) in exports.iter().enumerate() {
        functions.function(*ty);
        code.function(body);
        export.export(name, ExportKind::Func, index as u32);
    }
    export.export("memory", ExportKind::Memory, 0);

    let mut memories = MemorySection::new();
    for minimum in [MAIN_PAGES, 0] {
        memories.memory(MemoryType {
            minimum,
            maximum: None,
            memory64: false,
            shared: false,
            page_size_log2: None,
        });
    }
    let mut tables = TableSection::new();
    tables.table(TableType {
        element_type: RefType::FUNCREF,
        table64: false,
        minimum: 0,
        maximum: None,
        shared: false,
    });
    let mut globals = GlobalSection::new();
    globals.global(
        GlobalType {
            val_type: ValType::I32,
            mutable: true,
            shared: false,
        },
        &ConstExpr::i32_const(HEAP),
    );

    // Static data: the `info` record, its strings, the snapshot `{}`.
    let mut data = DataSection::new();
    let mut info = Vec::new();
    for (ptr, len) in [(NAME, 7), (VERSION, 5), (KINDS, 0), (ENCODING, 4)] {
        info.extend_from_slice(&(ptr as u32).to_le_bytes());
        info.extend_from_slice(&(len as u32).to_le_bytes());
    }
    data.active(0, &ConstExpr::i32_const(INFO), info);
    data.active(0, &ConstExpr::i32_const(NAME), b"growing".to_vec());
    data.active(0, &ConstExpr::i32_const(VERSION), b"0.1.0".to_vec());
    data.active(0, &ConstExpr::i32_const(ENCODING), b"json".to_vec());
    data.active(0, &ConstExpr::i32_const(STATE), b"{}".to_vec());
    let mut snapshot = Vec::new();
    snapshot.extend_from_slice(&(STATE as u32).to_le_bytes());
    snapshot.extend_from_slice(&2u32.to_le_bytes());
    data.active(0, &ConstExpr::i32_const(SNAPSHOT), snapshot);

    let mut module = Module::new();
    module
        .section(&types)
        .section(&functions)
        .section(&tables)
        .section(&memories)
        .section(&globals)
        .section(&export)
        .section(&code)
        .section(&data);
    module.finish()
}

// Addresses in memory 0.
const INFO: i32 = 16;
const NAME: i32 = 64;
const VERSION: i32 = 72;
const KINDS: i32 = 80;
const ENCODING: i32 = 84;
const STATE: i32 = 88;
const SNAPSHOT: i32 = 96;
/// 16 zero bytes: `ok` of every `result` export.
const ZEROS: i32 = 112;
/// Where `cabi_realloc` starts handing out memory.
const HEAP: i32 = 1024;

fn mem(offset: u64, align: u32, memory_index: u32) -> MemArg {
    MemArg {
        offset,
        align,
        memory_index,
    }
}

/// `cabi_realloc(old, old_size, align, new_size)`: a bump allocator over
/// memory 0 (never frees; the tests send a few events).
fn realloc() -> Function {
    let mut f = Function::new([(1, ValType::I32)]);
    // p = (heap + align - 1) & -align; heap = p + new_size; return p
    f.instruction(&I::GlobalGet(0))
        .instruction(&I::LocalGet(2))
        .instruction(&I::I32Add)
        .instruction(&I::I32Const(1))
        .instruction(&I::I32Sub)
        .instruction(&I::I32Const(0))
        .instruction(&I::LocalGet(2))
        .instruction(&I::I32Sub)
        .instruction(&I::I32And)
        .instruction(&I::LocalTee(4))
        .instruction(&I::LocalGet(3))
        .instruction(&I::I32Add)
        .instruction(&I::GlobalSet(0))
        .instruction(&I::LocalGet(4))
        .instruction(&I::End);
    f
}

/// `handle-events(ptr, len)`: for each 56-byte `event` record, N = the
/// digits of `data`, then by the first byte of `kind`: `m` grows memory 1 by
/// N pages, `t` grows the table by N null elements; -1 (refused) traps.
fn handle_events() -> Function {
    // Locals after the 2 params: 2 = event address, 3 = end, 4 = n,
    // 5 = data cursor, 6 = data end.
    let mut f = Function::new([(5, ValType::I32)]);
    let event_field = |f: &mut Function, offset: u64| {
        f.instruction(&I::LocalGet(2))
            .instruction(&I::I32Load(mem(offset, 2, 0)));
    };
    f.instruction(&I::LocalGet(0))
        .instruction(&I::LocalSet(2))
        .instruction(&I::LocalGet(0))
        .instruction(&I::LocalGet(1))
        .instruction(&I::I32Const(56))
        .instruction(&I::I32Mul)
        .instruction(&I::I32Add)
        .instruction(&I::LocalSet(3))
        .instruction(&I::Block(BlockType::Empty))
        .instruction(&I::Loop(BlockType::Empty))
        // while event < end
        .instruction(&I::LocalGet(2))
        .instruction(&I::LocalGet(3))
        .instruction(&I::I32GeU)
        .instruction(&I::BrIf(1))
        // n = digits of data (ptr at 32, len at 36)
        .instruction(&I::I32Const(0))
        .instruction(&I::LocalSet(4));
    event_field(&mut f, 32);
    f.instruction(&I::LocalSet(5));
    event_field(&mut f, 32);
    event_field(&mut f, 36);
    f.instruction(&I::I32Add)
        .instruction(&I::LocalSet(6))
        .instruction(&I::Block(BlockType::Empty))
        .instruction(&I::Loop(BlockType::Empty))
        .instruction(&I::LocalGet(5))
        .instruction(&I::LocalGet(6))
        .instruction(&I::I32GeU)
        .instruction(&I::BrIf(1))
        // digit = byte - '0'; if digit < 10 { n = n * 10 + digit }
        .instruction(&I::LocalGet(5))
        .instruction(&I::I32Load8U(mem(0, 0, 0)))
        .instruction(&I::I32Const(48))
        .instruction(&I::I32Sub)
        .instruction(&I::LocalTee(1)) // param 1 is free once `end` is known
        .instruction(&I::I32Const(10))
        .instruction(&I::I32LtU)
        .instruction(&I::If(BlockType::Empty))
        .instruction(&I::LocalGet(4))
        .instruction(&I::I32Const(10))
        .instruction(&I::I32Mul)
        .instruction(&I::LocalGet(1))
        .instruction(&I::I32Add)
        .instruction(&I::LocalSet(4))
        .instruction(&I::End)
        .instruction(&I::LocalGet(5))
        .instruction(&I::I32Const(1))
        .instruction(&I::I32Add)
        .instruction(&I::LocalSet(5))
        .instruction(&I::Br(0))
        .instruction(&I::End)
        .instruction(&I::End);
    // The kind's first byte (kind ptr at 24).
    event_field(&mut f, 24);
    f.instruction(&I::I32Load8U(mem(0, 0, 0)))
        .instruction(&I::I32Const(b'm' as i32))
        .instruction(&I::I32Eq)
        .instruction(&I::If(BlockType::Empty))
        .instruction(&I::LocalGet(4))
        .instruction(&I::MemoryGrow(1))
        .instruction(&I::I32Const(-1))
        .instruction(&I::I32Eq)
        .instruction(&I::If(BlockType::Empty))
        .instruction(&I::Unreachable)
        .instruction(&I::End)
        .instruction(&I::Else)
        .instruction(&I::RefNull(HeapType::FUNC))
        .instruction(&I::LocalGet(4))
        .instruction(&I::TableGrow(0))
        .instruction(&I::I32Const(-1))
        .instruction(&I::I32Eq)
        .instruction(&I::If(BlockType::Empty))
        .instruction(&I::Unreachable)
        .instruction(&I::End)
        .instruction(&I::End)
        // next event
        .instruction(&I::LocalGet(2))
        .instruction(&I::I32Const(56))
        .instruction(&I::I32Add)
        .instruction(&I::LocalSet(2))
        .instruction(&I::Br(0))
        .instruction(&I::End)
        .instruction(&I::End)
        .instruction(&I::I32Const(ZEROS))
        .instruction(&I::End);
    f
}

/// The core module as a component of the `projection` world.
fn growing_component() -> Vec<u8> {
    let wit = hume_tests::workspace_root().join("wit/projection.wit");
    let text = std::fs::read_to_string(&wit).expect("read wit/projection.wit");
    let mut resolve = wit_parser::Resolve::default();
    let package = resolve
        .push_str(&wit, &text)
        .expect("parse wit/projection.wit");
    let world = resolve
        .select_world(&[package], Some("projection"))
        .expect("world projection");
    let mut module = core_module();
    wit_component::embed_component_metadata(
        &mut module,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
    )
    .expect("embed the world");
    wit_component::ComponentEncoder::default()
        .validate(true)
        .module(&module)
        .expect("a valid core module")
        .encode()
        .expect("encode the component")
}

fn load() -> Plugin {
    let runtime = Runtime::new(RuntimeConfig::default()).expect("runtime");
    runtime
        .load(&growing_component())
        .expect("the component loads")
}

fn event(kind: &str, n: u64) -> RecordedEvent {
    RecordedEvent {
        position: 1,
        stream: "s".into(),
        revision: 1,
        kind: kind.into(),
        data: n.to_string().into_bytes(),
        metadata: None,
        timestamp: 0,
    }
}

/// One call growing `kind` by `n` in a fresh instance limited to 8 MiB.
async fn grow(plugin: &Plugin, kind: &str, n: u64) -> Result<(), BatchError> {
    let limits = Limits {
        max_memory_bytes: 8 * MIB,
        ..Limits::default()
    };
    let mut instance = plugin
        .instantiate("growing", limits)
        .await
        .expect("instantiate");
    instance.init_state().await.expect("init-state");
    instance.handle_events(&[event(kind, n)]).await
}

fn memory_fault(result: Result<(), BatchError>) -> String {
    let err = match result {
        Err(BatchError::Plugin(err)) => err,
        other => panic!("expected the memory limit, got {other:?}"),
    };
    assert!(
        matches!(
            err,
            PluginError::LimitExceeded {
                limit: Limit::Memory,
                ..
            }
        ),
        "{err}"
    );
    err.to_string()
}

/// Memory 0 holds 1 MiB; memory 1 may take 6 MiB (7 in all), not 7.5 MiB
/// (8.5 in all), although 7.5 MiB alone is under the 8 MiB limit.
#[tokio::test]
async fn a_second_memory_counts_against_the_memory_limit() {
    let plugin = load();
    grow(&plugin, "memory", 96).await.expect("7 MiB in all");
    let message = memory_fault(grow(&plugin, "memory", 120).await);
    assert!(
        message.contains("memory limit")
            && message.contains("a linear memory")
            && message.contains(&format!("the limit is {} bytes", 8 * MIB)),
        "{message}"
    );
}

/// Table elements count 8 bytes each: 700,000 (5.3 MiB beside the 1 MiB
/// memory) fit, 1,000,000 (7.6 MiB, 8.6 in all) do not.
#[tokio::test]
async fn table_growth_counts_against_the_memory_limit() {
    let plugin = load();
    grow(&plugin, "table", 700_000)
        .await
        .expect("6.3 MiB in all");
    let message = memory_fault(grow(&plugin, "table", 1_000_000).await);
    assert!(
        message.contains("memory limit") && message.contains("a table"),
        "{message}"
    );
}
