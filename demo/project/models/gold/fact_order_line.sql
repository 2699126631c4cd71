/* lakeforge
description: "Grain: one order line. Keys to every dimension; the customer key is the version valid on the order date."
checks:
  - {type: unique, column: [order_number, product_code]}
  - {type: not_null, column: [customer_key, product_code, order_date_key]}
  - {type: relationships, column: customer_key, to: gold.dim_customer}
  - {type: relationships, column: product_code, to: gold.dim_product}
  - {type: relationships, column: order_date_key, to: gold.dim_date, field: date_key}
  - {type: relationships, column: sales_rep_employee_number, to: gold.dim_employee, field: employee_number}
  - {type: row_count, compare_to: bronze.shop_orderdetails}
  - {type: expression, name: amount_is_quantity_times_price, expression: amount = quantity * unit_price}
*/
-- the customer version valid on each order's date: an equality join with the range as a filter, joined back to
-- the orders by order number (unique in silver.orders), so an order without a valid version keeps a NULL key
-- as a LEFT JOIN on the range would give (portable: Daft joins only on equalities)
with versions as (
    select o.order_number, c.customer_key, c.sales_rep_employee_number
    from silver.orders o
    join gold.dim_customer c on c.customer_number = o.customer_number
    where c.valid_from <= o.order_date and (c.valid_to is null or o.order_date < c.valid_to)
)
select
    l.order_number,
    l.order_line_number,
    l.product_code,
    c.customer_key,
    o.customer_number,
    c.sales_rep_employee_number,
    (year(o.order_date) * 10000 + month(o.order_date) * 100 + day(o.order_date))::integer as order_date_key,
    o.order_date,
    o.status,
    l.quantity,
    l.unit_price,
    (l.quantity * l.unit_price)::decimal(18, 2) as amount
from silver.order_lines l
join silver.orders o on o.order_number = l.order_number
left join versions c on c.order_number = o.order_number
