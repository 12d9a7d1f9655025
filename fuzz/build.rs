//! Compiles the example services the `server_e2e` target serves, the way
//! users do: through idlc from build.rs.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    idlc::Builder::new().compile(&[
        "../idl-examples/idl/hello.rpc",
        "../idl-examples/idl/shop.rpc",
    ])?;
    Ok(())
}
