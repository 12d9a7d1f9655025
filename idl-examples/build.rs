//! Compiles the example `.rpc` files the way users do: through the idlc
//! library from build.rs, into OUT_DIR.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    idlc::Builder::new().compile(&["idl/hello.rpc", "idl/shop.rpc"])?;
    Ok(())
}
