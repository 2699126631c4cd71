/* lakeforge
materialized: incremental
unique_key: order_number
description: Orders from the shop (MariaDB), merged by order number; reads only new bronze rows.
checks:
  - {type: not_null, column: [order_number, order_date, customer_number]}
  - {type: accepted_values, column: status, values: [Shipped, Resolved, Cancelled, On Hold, Disputed, In Process]}
  - {type: relationships, column: customer_number, to: silver.customers, severity: warn}
  - {type: row_count, compare_to: bronze.shop_orders}
*/
select
    ordernumber::integer        as order_number,
    orderdate                   as order_date,
    requireddate                as required_date,
    shippeddate                 as shipped_date,
    trim(status)                as status,
    nullif(trim(comments), '')  as comments,
    customernumber::integer     as customer_number   -- conformed to silver.customers.customer_number
from bronze.shop_orders
qualify row_number() over (partition by ordernumber order by _lf_extracted_at desc) = 1
