//! `update_high` as a CosmWasm contract: read one key, write it if the value is higher,
//! return the high. The same work as the stock example's call in our benchmark; values are
//! integers because CosmWasm refuses floats.

use cosmwasm_std::{entry_point, to_json_binary, Binary, Deps, DepsMut, Empty, Env, MessageInfo, Response, StdResult};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecuteMsg {
    UpdateHigh { symbol: String, value: u64 },
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueryMsg {
    GetHigh { symbol: String },
}

fn key(symbol: &str) -> Vec<u8> {
    [b"high/".as_slice(), symbol.as_bytes()].concat()
}

fn high(deps: Deps, symbol: &str) -> u64 {
    deps.storage
        .get(&key(symbol))
        .and_then(|bytes| bytes.try_into().ok())
        .map(u64::from_be_bytes)
        .unwrap_or(0)
}

#[entry_point]
pub fn instantiate(_deps: DepsMut, _env: Env, _info: MessageInfo, _msg: Empty) -> StdResult<Response> {
    Ok(Response::default())
}

#[entry_point]
pub fn execute(deps: DepsMut, _env: Env, _info: MessageInfo, msg: ExecuteMsg) -> StdResult<Response> {
    let ExecuteMsg::UpdateHigh { symbol, value } = msg;
    let current = high(deps.as_ref(), &symbol);
    if value > current {
        deps.storage.set(&key(&symbol), &value.to_be_bytes());
    }
    Ok(Response::new().set_data(to_json_binary(&current.max(value))?))
}

#[entry_point]
pub fn query(deps: Deps, _env: Env, msg: QueryMsg) -> StdResult<Binary> {
    let QueryMsg::GetHigh { symbol } = msg;
    to_json_binary(&high(deps, &symbol))
}
