/* lakeforge
description: "Revenue by month x customer country x product line."
checks:
  - {type: not_null, column: [month, country, product_line]}
  - {type: unique, column: [month, country, product_line]}
*/
select
    date_trunc('month', f.order_date)::date as month,
    c.country,
    p.product_line,
    count(distinct f.order_number)          as orders,
    sum(f.quantity)::bigint                 as quantity,
    sum(f.amount)::decimal(18, 2)           as revenue
from gold.fact_order_line f
join gold.dim_customer c on c.customer_key = f.customer_key
join gold.dim_product p on p.product_code = f.product_code
group by all
