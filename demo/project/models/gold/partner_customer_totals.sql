/* lakeforge
description: Partner orders (CSV drops, bronze.partners) and their deliveries (JSON drops, bronze.deliveries) per CRM customer (PostgreSQL).
checks:
  - {type: unique, column: customer_number}
  - {type: not_null, column: [customer_number, customer_name]}
*/
with orders as (
    select customer_number, count(*) as partner_orders, sum(amount) as ordered_amount
    from bronze.partners
    group by customer_number
), delivered as (
    select p.customer_number, count(*) as deliveries, sum(d.fee) as delivery_fees
    from bronze.deliveries d
    join bronze.partners p on p.order_id = d.order_id
    group by p.customer_number
)
select
    c.customer_number,
    c.customer_name,
    c.country,
    o.partner_orders::bigint                          as partner_orders,
    o.ordered_amount::decimal(14, 2)                  as ordered_amount,
    coalesce(d.deliveries, 0)::bigint                 as deliveries,
    coalesce(d.delivery_fees, 0)::decimal(12, 2)      as delivery_fees
from orders o
join silver.customers c using (customer_number)
left join delivered d using (customer_number)
